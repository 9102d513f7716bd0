"""Room homes and node liveness in Redis: the keys and the Lua that moves them.

Keys (``P`` is the prefix, ``roomsignal`` by default):

- ``P:node:ID`` -- the node is alive (its load as value), ``PX`` node TTL;
- ``P:load`` -- hash node ID -> load (connections), for placement;
- ``P:home:SID`` -- the room's lease: the home's node ID, ``SET NX PX``;
- ``P:rooms`` -- sorted set of live rooms scored by lease expiry (ms), so a
  dead home's rooms leave the ``max_sessions`` count when their leases lapse;
- ``P:room:SID`` -- the room's journal (``_journal``): a room placed with
  none gets its first epoch here, so its new home need not load it;
- channel ``P:to:ID`` -- relay messages for node ``ID``.

Every script runs in one round trip, atomically, so two nodes placing the
same room at once agree on one home.
"""

from __future__ import annotations

LEASE = 3.0
"""A room lease's default time to live, in seconds (``Cluster(lease=...)``, ``--lease``)."""

__all__ = ["BEAT", "HANDOVER", "LEASE", "PLACE", "RELEASE"]

# KEYS: home key, rooms zset, load hash, room journal hash.
# ARGV: node-key prefix, now ms, lease ms, max_sessions, home-key prefix,
#       epoch for a room with no journal ("": no journaling), journal TTL ms.
# -> {the home's ID, 1 if the room was placed with no journal (its epoch is
# ARGV[6]) else 0}; {"", 0} when at max_sessions. A lease whose holder is
# dead (no node key) is broken here: the room is placed afresh.
PLACE = """
local home = redis.call('GET', KEYS[1])
if home then
  if redis.call('EXISTS', ARGV[1] .. home) == 1 then return {home, 0} end
  redis.call('DEL', KEYS[1])
end
local now = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCOUNT', KEYS[2], now, '+inf') >= tonumber(ARGV[4]) then return {'', 0} end
local best, best_load = nil, nil
local loads = redis.call('HGETALL', KEYS[3])
for i = 1, #loads, 2 do
  local node, load = loads[i], tonumber(loads[i + 1])
  if redis.call('EXISTS', ARGV[1] .. node) == 1 then
    if best == nil or load < best_load or (load == best_load and node < best) then
      best, best_load = node, load
    end
  else
    redis.call('HDEL', KEYS[3], node)
  end
end
if best == nil then return {'', 0} end
redis.call('SET', KEYS[1], best, 'PX', ARGV[3])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), string.sub(KEYS[1], #ARGV[5] + 1))
redis.call('HINCRBY', KEYS[3], best, 1)
if ARGV[6] ~= '' and redis.call('EXISTS', KEYS[4]) == 0 then
  redis.call('HSET', KEYS[4], 'epoch', ARGV[6])
  redis.call('PEXPIRE', KEYS[4], ARGV[7])
  return {best, 1}
end
return {best, 0}
"""

# KEYS: node key, load hash, rooms zset, then one home key per room held.
# ARGV: node ID, node TTL ms, load, lease ms, now ms, home-key prefix,
#       then the node IDs whose liveness is asked.
# -> {1/0 per room (still ours), 1/0 per asked node (alive)}. A lease that
# vanished (a Redis restart) is taken back; one held by another node is lost.
BEAT = """
local me = ARGV[1]
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[2])
redis.call('HSET', KEYS[2], me, ARGV[3])
local now, lease = tonumber(ARGV[5]), tonumber(ARGV[4])
local held = {}
for i = 4, #KEYS do
  local home = redis.call('GET', KEYS[i])
  if home == false or home == me then
    redis.call('SET', KEYS[i], me, 'PX', lease)
    redis.call('ZADD', KEYS[3], now + lease, string.sub(KEYS[i], #ARGV[6] + 1))
    held[#held + 1] = 1
  else
    held[#held + 1] = 0
  end
end
local alive = {}
for i = 7, #ARGV do
  alive[#alive + 1] = redis.call('EXISTS', string.sub(KEYS[1], 1, #KEYS[1] - #me) .. ARGV[i])
end
return {held, alive}
"""

# KEYS: rooms zset, then home keys to give up; ARGV: node ID, home-key prefix.
# Deletes only the leases still ours.
RELEASE = """
for i = 2, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    redis.call('DEL', KEYS[i])
    redis.call('ZREM', KEYS[1], string.sub(KEYS[i], #ARGV[2] + 1))
  end
end
return 1
"""

# A draining node hands its rooms over (``Cluster.drain``).
# KEYS: load hash, rooms zset, then one home key per room to hand over.
# ARGV: node ID, node-key prefix, lease ms, now ms, home-key prefix.
# -> one target node ID per room ("" if the lease is not ours, or no other
# node is alive). The node leaves placement first (its load entry is
# deleted; its liveness key is left to lapse, so that its peers do not drop
# their relayed clients before its last answers reach them), then each lease
# still ours goes to the least-loaded live node, counted as one more room.
HANDOVER = """
local me = ARGV[1]
redis.call('HDEL', KEYS[1], me)
local nodes = {}
local loads = redis.call('HGETALL', KEYS[1])
for i = 1, #loads, 2 do
  if redis.call('EXISTS', ARGV[2] .. loads[i]) == 1 then
    nodes[#nodes + 1] = {loads[i], tonumber(loads[i + 1])}
  end
end
local out = {}
for i = 3, #KEYS do
  local target = ''
  if redis.call('GET', KEYS[i]) == me and #nodes > 0 then
    local best = 1
    for j = 2, #nodes do
      if nodes[j][2] < nodes[best][2]
        or (nodes[j][2] == nodes[best][2] and nodes[j][1] < nodes[best][1]) then
        best = j
      end
    end
    target = nodes[best][1]
    nodes[best][2] = nodes[best][2] + 1
    redis.call('SET', KEYS[i], target, 'PX', ARGV[3])
    redis.call('ZADD', KEYS[2], tonumber(ARGV[4]) + tonumber(ARGV[3]),
      string.sub(KEYS[i], #ARGV[5] + 1))
    redis.call('HINCRBY', KEYS[1], target, 1)
  end
  out[#out + 1] = target
end
return out
"""
