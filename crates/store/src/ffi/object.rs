//! Raw calls the safe `hdf5` API lacks: existence checks without error-stack churn, renames,
//! object tokens, and reading fixed-length strings of a length known only at run time.

use std::ffi::CString;

use hdf5::Location;
use hdf5_sys::{h5a, h5l, h5o, h5p::H5P_DEFAULT, h5t};

use super::id::{OwnedId, check};
use crate::value::Value;

/// The identity of an HDF5 object within its file (address or token), stable while it exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Token {
    fileno: u64,
    bytes: [u8; h5o::H5O_MAX_TOKEN_SIZE],
}

fn cstr(name: &str) -> hdf5::Result<CString> {
    CString::new(name).map_err(|_| hdf5::Error::from("name contains a NUL byte"))
}

/// Does `loc` carry an attribute named `name`?
pub(crate) fn attr_exists(loc: &Location, name: &str) -> hdf5::Result<bool> {
    let c = cstr(name)?;
    hdf5::sync::sync(|| {
        // SAFETY: `loc.id()` is a live location id held by `loc`; `c` is a NUL-terminated string
        // that outlives the call.
        let r = check(unsafe { h5a::H5Aexists(loc.id(), c.as_ptr()) })?;
        Ok(r > 0)
    })
}

/// Does `loc` have a link named `name` (a direct child, not a path)?
pub(crate) fn link_exists(loc: &Location, name: &str) -> hdf5::Result<bool> {
    let c = cstr(name)?;
    hdf5::sync::sync(|| {
        // SAFETY: live location id, NUL-terminated name outliving the call, default access plist.
        let r = check(unsafe { h5l::H5Lexists(loc.id(), c.as_ptr(), H5P_DEFAULT) })?;
        Ok(r > 0)
    })
}

/// Renames attribute `from` to `to` on `loc`.
pub(crate) fn rename_attr(loc: &Location, from: &str, to: &str) -> hdf5::Result<()> {
    let (a, b) = (cstr(from)?, cstr(to)?);
    hdf5::sync::sync(|| {
        // SAFETY: live location id; both names NUL-terminated and alive for the call.
        let r = unsafe { h5a::H5Arename(loc.id(), a.as_ptr(), b.as_ptr()) };
        check(r)
    })
    .map(drop)
}

/// Renames link `from` to `to` inside the group `loc`.
pub(crate) fn move_link(loc: &Location, from: &str, to: &str) -> hdf5::Result<()> {
    let (a, b) = (cstr(from)?, cstr(to)?);
    hdf5::sync::sync(|| {
        // SAFETY: live location id used as both source and destination; names NUL-terminated and
        // alive for the call; default property lists.
        let r = unsafe {
            h5l::H5Lmove(
                loc.id(),
                a.as_ptr(),
                loc.id(),
                b.as_ptr(),
                H5P_DEFAULT,
                H5P_DEFAULT,
            )
        };
        check(r)
    })
    .map(drop)
}

/// The token identifying the object `loc` refers to.
pub(crate) fn token(loc: &Location) -> hdf5::Result<Token> {
    hdf5::sync::sync(|| token_of(loc.id()))
}

/// The token of the object `id` (a live object id; the caller holds the library lock).
pub(super) fn token_of(id: hdf5_sys::h5i::hid_t) -> hdf5::Result<Token> {
    let mut info = std::mem::MaybeUninit::<h5o::H5O_info2_t>::uninit();
    // SAFETY: `id` is a live object id (the caller's contract); `info` is a properly sized
    // out-parameter that H5Oget_info3 fills completely on success (checked before reading it).
    let r = unsafe { h5o::H5Oget_info3(id, info.as_mut_ptr(), h5o::H5O_INFO_BASIC) };
    check(r)?;
    // SAFETY: the call succeeded, so `info` is initialized.
    let info = unsafe { info.assume_init() };
    // SAFETY: H5O_token_t is `#[repr(C)]` around exactly `[u8; H5O_MAX_TOKEN_SIZE]`.
    let bytes: [u8; h5o::H5O_MAX_TOKEN_SIZE] = unsafe { std::mem::transmute(info.token) };
    Ok(Token {
        fileno: info.fileno,
        bytes,
    })
}

/// Reads a fixed-length string attribute (any length, ASCII or UTF-8) as raw bytes,
/// trailing NUL/space padding removed.
pub(crate) fn read_fixed_string_attr(loc: &Location, name: &str) -> hdf5::Result<Vec<u8>> {
    let c = cstr(name)?;
    hdf5::sync::sync(|| {
        // SAFETY: live location id, NUL-terminated name; the returned id is checked and owned.
        let attr = OwnedId::new(unsafe { h5a::H5Aopen(loc.id(), c.as_ptr(), H5P_DEFAULT) })?;
        // SAFETY: `attr.id()` is a live attribute id; the returned type id is checked and owned.
        let ty = OwnedId::new(unsafe { h5a::H5Aget_type(attr.id()) })?;
        // SAFETY: live datatype id.
        let is_var = unsafe { h5t::H5Tis_variable_str(ty.id()) };
        if is_var != 0 {
            return Err(hdf5::Error::from("not a fixed-length string"));
        }
        // SAFETY: live datatype id.
        let size = unsafe { h5t::H5Tget_size(ty.id()) };
        if size == 0 || size > (1 << 24) {
            return Err(hdf5::Error::from("unreasonable string size"));
        }
        let space = loc.attr(name)?.space()?;
        if space.size() != 1 {
            return Err(hdf5::Error::from("not a scalar string"));
        }
        let mut buf = vec![0u8; size];
        // SAFETY: `buf` holds exactly `size` bytes, the size of one element of the attribute's
        // own (memory-compatible, fixed-length string) type; the dataspace has one element.
        let r = unsafe { h5a::H5Aread(attr.id(), ty.id(), buf.as_mut_ptr().cast()) };
        check(r)?;
        while matches!(buf.last(), Some(0) | Some(b' ')) {
            buf.pop();
        }
        Ok(buf)
    })
}

/// A number type with a native HDF5 memory type (no datatype object is built per write).
pub(crate) trait NativeNumber: Copy {
    /// libhdf5's id of the native type (valid once the library is initialised, as it is
    /// whenever a location exists).
    fn mem_type() -> hdf5_sys::h5i::hid_t;
}

macro_rules! native {
    ($($t:ty => $id:ident),*) => {$(
        impl NativeNumber for $t {
            fn mem_type() -> hdf5_sys::h5i::hid_t {
                *h5t::$id
            }
        }
    )*};
}
native!(i8 => H5T_NATIVE_INT8, i16 => H5T_NATIVE_INT16, i32 => H5T_NATIVE_INT32,
    i64 => H5T_NATIVE_INT64, u8 => H5T_NATIVE_UINT8, u16 => H5T_NATIVE_UINT16,
    u32 => H5T_NATIVE_UINT32, u64 => H5T_NATIVE_UINT64, f32 => H5T_NATIVE_FLOAT,
    f64 => H5T_NATIVE_DOUBLE);

/// Overwrites the existing scalar attribute `name` of `loc` with `v`: open, write, close, and
/// no lookup of the stored type. libhdf5 converts `v` to the stored type, so the caller must
/// know that type is `T`'s own (it wrote it); otherwise the value is converted, not refused.
pub(crate) fn overwrite_number_attr<T: NativeNumber>(
    loc: &Location,
    name: &str,
    v: T,
) -> hdf5::Result<()> {
    let c = cstr(name)?;
    hdf5::sync::sync(|| {
        // SAFETY: live location id; NUL-terminated name alive for the call; default access
        // property list. The returned id is owned (closed on drop).
        let attr = OwnedId::new(unsafe { h5a::H5Aopen(loc.id(), c.as_ptr(), H5P_DEFAULT) })?;
        // SAFETY: `attr` is a live attribute id; the buffer is one `T` (the attribute is a
        // scalar, one element) described by `T`'s native memory type, alive for the call.
        check(unsafe {
            h5a::H5Awrite(
                attr.id(),
                T::mem_type(),
                std::ptr::from_ref(&v).cast::<std::ffi::c_void>(),
            )
        })?;
        attr.close()
    })
}

/// Types and the scalar dataspace that attribute creation reuses, built once per process
/// (transient libhdf5 ids, never closed: they live as long as the library).
struct Shared {
    bool_type: hdf5_sys::h5i::hid_t,
    str_type: hdf5_sys::h5i::hid_t,
    scalar: hdf5_sys::h5i::hid_t,
}

fn shared() -> hdf5::Result<&'static Shared> {
    static SHARED: std::sync::OnceLock<Shared> = std::sync::OnceLock::new();
    if let Some(s) = SHARED.get() {
        return Ok(s);
    }
    let built = hdf5::sync::sync(|| -> hdf5::Result<Shared> {
        use hdf5_sys::h5s;
        // SAFETY: every call gets ids it created just before (checked by `OwnedId::new`)
        // and pointers to locals that outlive the call; the names are NUL-terminated.
        unsafe {
            let b = OwnedId::new(h5t::H5Tenum_create(*h5t::H5T_NATIVE_INT8))?;
            let (zero, one) = (0_i8, 1_i8);
            check(h5t::H5Tenum_insert(
                b.id(),
                c"FALSE".as_ptr(),
                std::ptr::from_ref(&zero).cast(),
            ))?;
            check(h5t::H5Tenum_insert(
                b.id(),
                c"TRUE".as_ptr(),
                std::ptr::from_ref(&one).cast(),
            ))?;
            let s = OwnedId::new(h5t::H5Tcopy(*h5t::H5T_C_S1))?;
            check(h5t::H5Tset_cset(s.id(), h5t::H5T_cset_t::H5T_CSET_UTF8))?;
            check(h5t::H5Tset_strpad(s.id(), h5t::H5T_str_t::H5T_STR_NULLTERM))?;
            check(h5t::H5Tset_size(s.id(), h5t::H5T_VARIABLE))?;
            let sp = OwnedId::new(h5s::H5Screate(h5s::H5S_class_t::H5S_SCALAR))?;
            let shared = Shared {
                bool_type: b.id(),
                str_type: s.id(),
                scalar: sp.id(),
            };
            // Kept for the life of the process (see `Shared`).
            std::mem::forget((b, s, sp));
            Ok(shared)
        }
    })?;
    // A racing thread may have built its own: one of the two is kept, the other leaks a few
    // ids once.
    Ok(SHARED.get_or_init(|| built))
}

/// Creates the scalar attribute `name` on `loc` and writes `v`: one create and one write,
/// with no datatype or dataspace built per call, in the file type the `hdf5` crate gives the
/// same Rust value (little-endian standard numbers, its `int8` boolean enum, variable-length
/// UTF-8 strings), so a reader sees no difference. Fails if the attribute exists. Returns
/// false, creating nothing, for a value that is not a plain number, `bool` or string (or a
/// string holding a NUL byte): the caller stores those its own way.
pub(crate) fn create_scalar_attr(loc: &Location, name: &str, v: &Value) -> hdf5::Result<bool> {
    let text = match v {
        Value::Str(t) => match CString::new(t.as_str()) {
            Ok(c) => Some(c),
            Err(_) => return Ok(false),
        },
        _ => None,
    };
    let text_ptr = text.as_ref().map(|c| c.as_ptr());
    let sh = shared()?;
    fn from<T>(x: &T) -> *const std::ffi::c_void {
        std::ptr::from_ref(x).cast()
    }
    // File type, memory type (native) and the bytes of the value. A Rust `bool` is one byte
    // holding 0 or 1: the enum's int8 values; a variable-length string is written as a
    // pointer to its C string.
    let (file_t, mem_t, buf) = match v {
        Value::I8(x) => (*h5t::H5T_STD_I8LE, *h5t::H5T_NATIVE_INT8, from(x)),
        Value::I16(x) => (*h5t::H5T_STD_I16LE, *h5t::H5T_NATIVE_INT16, from(x)),
        Value::I32(x) => (*h5t::H5T_STD_I32LE, *h5t::H5T_NATIVE_INT32, from(x)),
        Value::I64(x) => (*h5t::H5T_STD_I64LE, *h5t::H5T_NATIVE_INT64, from(x)),
        Value::U8(x) => (*h5t::H5T_STD_U8LE, *h5t::H5T_NATIVE_UINT8, from(x)),
        Value::U16(x) => (*h5t::H5T_STD_U16LE, *h5t::H5T_NATIVE_UINT16, from(x)),
        Value::U32(x) => (*h5t::H5T_STD_U32LE, *h5t::H5T_NATIVE_UINT32, from(x)),
        Value::U64(x) => (*h5t::H5T_STD_U64LE, *h5t::H5T_NATIVE_UINT64, from(x)),
        Value::F32(x) => (*h5t::H5T_IEEE_F32LE, *h5t::H5T_NATIVE_FLOAT, from(x)),
        Value::F64(x) => (*h5t::H5T_IEEE_F64LE, *h5t::H5T_NATIVE_DOUBLE, from(x)),
        Value::Bool(x) => (sh.bool_type, sh.bool_type, from(x)),
        Value::Str(_) => match &text_ptr {
            Some(p) => (sh.str_type, sh.str_type, from(p)),
            None => return Ok(false),
        },
        _ => return Ok(false),
    };
    let c = cstr(name)?;
    hdf5::sync::sync(|| {
        // SAFETY: live location id; NUL-terminated name alive for the call; the type and
        // dataspace ids are live (standard types are library constants, the shared ones are
        // never closed); default property lists. The new attribute id is owned.
        let attr = OwnedId::new(unsafe {
            h5a::H5Acreate2(
                loc.id(),
                c.as_ptr(),
                file_t,
                sh.scalar,
                H5P_DEFAULT,
                H5P_DEFAULT,
            )
        })?;
        // SAFETY: live attribute id; `buf` points at one element of `mem_t` (a scalar
        // dataspace), alive for the call: the number or bool inside `v`, or `text_ptr`, the
        // pointer to the C string `text` that outlives the call.
        check(unsafe { h5a::H5Awrite(attr.id(), mem_t, buf) })?;
        attr.close()?;
        Ok(true)
    })
}
