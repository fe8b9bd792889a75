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
/// KEYS[1]: the live-node sorted set; KEYS[2]: the connection → node hash; KEYS[3]: the claim
/// hash (connection → node). ARGV[1]: this node's id; ARGV[2]: the node timeout in ms; ARGV[3]:
/// the prefix of per-node connection sets; ARGV[4]: `1` to start afresh; ARGV[5]: the prefix of
/// per-node claim sets.
pub(crate) static HEARTBEAT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local function forget_in(set, hash, node)
  for _, id in ipairs(redis.call('SMEMBERS', set)) do
    if redis.call('HGET', hash, id) == node then
      redis.call('HDEL', hash, id)
    end
  end
  redis.call('DEL', set)
end
local function forget(node)
  forget_in(ARGV[3] .. node, KEYS[2], node)
  forget_in(ARGV[5] .. node, KEYS[3], node)
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

/// Claims a connection for a node when a request of it arrives there (no sticky sessions):
/// returns `{"here"}` when the node owns it (it just claimed it, with ARGV[3] = `1`, or owned it
/// already), `{"elsewhere", node}` when another live node does, `{"gone"}` when it ended, its
/// owner is dead, or nobody owns it and it may not be claimed.
///
/// KEYS[1]: the claim hash (connection → node); KEYS[2]: the live-node sorted set; KEYS[3]: the
/// connection's ended marker; KEYS[4]: the node's claim set. ARGV[1]: the connection id;
/// ARGV[2]: the node id; ARGV[3]: `1` when it may be claimed.
pub(crate) static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[3]) == 1 then
  return {'gone'}
end
local owner = redis.call('HGET', KEYS[1], ARGV[1])
if owner then
  if owner == ARGV[2] then
    return {'here'}
  end
  local time = redis.call('TIME')
  local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
  local until_ms = redis.call('ZSCORE', KEYS[2], owner)
  if until_ms and tonumber(until_ms) > now then
    return {'elsewhere', owner}
  end
  return {'gone'}
end
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('SADD', KEYS[4], ARGV[1])
  return {'here'}
end
return {'gone'}
",
    )
});

/// Gives up a node's claim on a connection that ended, and marks it ended for ARGV[3] ms (none
/// when 0) so no node claims it again.
///
/// KEYS as [`CLAIM`]'s but the sorted set: KEYS[1]: the claim hash; KEYS[2]: the ended marker;
/// KEYS[3]: the node's claim set. ARGV[1]: the connection id; ARGV[2]: the node id;
/// ARGV[3]: how long the marker lasts, in ms.
pub(crate) static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
end
redis.call('SREM', KEYS[3], ARGV[1])
if tonumber(ARGV[3]) > 0 then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
end
return 1
",
    )
});
