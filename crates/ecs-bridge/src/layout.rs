//! Where the bridge puts things in the file (specified in `docs/FORMAT.md`, "ECS layout").

/// The group holding everything the bridge writes.
pub const ECS_GROUP: &str = "ecs";
/// Entities' groups, sharded: `/ecs/entities/<shard>/<id>`.
pub const ENTITIES: &str = "entities";
/// Column tables, one per table-stored component: `/ecs/tables/<Tag>`.
pub const TABLES: &str = "tables";
/// Resources, one group each: `/ecs/resources/<Tag>`.
pub const RESOURCES: &str = "resources";
/// Dataset `/ecs/index`: the persistent ids of all persisted entities (`uint64`, sorted), so
/// that entities without stored components survive a reload too.
pub const INDEX: &str = "index";
/// Attribute on `/ecs`: the number of completed flushes (the tick the file is at).
pub const TICK_ATTR: &str = "tick";
/// Attribute on `/ecs`: the next persistent id to hand out.
pub const NEXT_ID_ATTR: &str = "next-id";
/// Attribute on `/ecs`: the version of the ECS layout.
pub const LAYOUT_VERSION_ATTR: &str = "layout-version";
/// The ECS layout version this build writes.
pub const LAYOUT_VERSION: u32 = 1;
/// The `loader-key` of entity groups.
pub const ENTITY_TAG: &str = "ecs-entity";
/// Column of a table holding the entities' persistent ids.
pub const ENTITY_COLUMN: &str = "entity";
/// Suffix of a table's mask column marking `None` values: `<field>-none` (uint8, 1 = None).
pub const NONE_SUFFIX: &str = "-none";
/// Entities per shard group.
pub const SHARD_SIZE: u64 = 1024;

/// The shard group name of an entity id.
pub fn shard_name(id: u64) -> String {
    format!("{:x}", id / SHARD_SIZE)
}

/// The path of an entity's group, relative to the file root.
pub fn entity_path(id: u64) -> String {
    format!("/{ECS_GROUP}/{ENTITIES}/{}/{id}", shard_name(id))
}

/// The name prefix of a group-stored component's fields on the entity group: `<Tag>.`.
pub fn field_prefix(tag: &str) -> String {
    format!("{tag}.")
}
