//! The Lua scripts nodes run in Redis: each is one round trip and atomic.

use std::sync::LazyLock;

use redis::Script;

/// Publishes a payload to the inbox of each node that owns one of the given connections — once
/// per node, however many of its connections are listed — and returns each connection's owner
/// (`""` when no node owns it).
///
/// KEYS[1]: the connection → node hash. ARGV[1]: the inbox channel prefix; ARGV[2]: the
/// payload; ARGV[3..]: connection ids.
pub(crate) static PUBLISH_TO_OWNERS: LazyLock<Script> =
    LazyLock::new(|| Script::new(PUBLISH_TO_OWNERS_LUA));

/// The source of [`PUBLISH_TO_OWNERS`], for `EVAL` (which, unlike `EVALSHA` with its fallback,
/// is one command whatever the server's script cache holds, so it keeps its place in order).
pub(crate) const PUBLISH_TO_OWNERS_LUA: &str = r"
local published = {}
local owners = {}
for i = 3, #ARGV do
  local node = redis.call('HGET', KEYS[1], ARGV[i])
  if node then
    if not published[node] then
      published[node] = true
      redis.call('PUBLISH', ARGV[1] .. node, ARGV[2])
    end
    owners[#owners + 1] = node
  else
    owners[#owners + 1] = ''
  end
end
return owners
";

/// A node's heartbeat: marks it live until now + ARGV[2] ms (Redis's clock, so nodes' clocks
/// may differ), removes the nodes whose time passed together with their connections, and
/// returns `{1 if this node was not live before, live node ids}`. With ARGV[4] = `1` (a node's
/// first heartbeat) it also removes what an earlier process with the same node id left.
///
/// KEYS[1]: the live-node sorted set; KEYS[2]: the connection → node hash. ARGV[1]: this
/// node's id; ARGV[2]: the node timeout in ms; ARGV[3]: the prefix of per-node connection sets;
/// ARGV[4]: `1` to start afresh.
pub(crate) static HEARTBEAT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local function forget(node)
  local set = ARGV[3] .. node
  for _, id in ipairs(redis.call('SMEMBERS', set)) do
    if redis.call('HGET', KEYS[2], id) == node then
      redis.call('HDEL', KEYS[2], id)
    end
  end
  redis.call('DEL', set)
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
for _, node in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  if node ~= ARGV[1] then
    forget(node)
  end
end
if ARGV[4] == '1' then
  forget(ARGV[1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local added = redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return {added, redis.call('ZRANGE', KEYS[1], 0, -1)}
",
    )
});

/// The live nodes now (by Redis's clock). KEYS[1]: the live-node sorted set.
pub(crate) static LIVE_NODES: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
",
    )
});
