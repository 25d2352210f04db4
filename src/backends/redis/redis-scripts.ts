import { KICKED } from "../state-store.ts";

/**
 * The Lua scripts behind RedisStore. Each runs atomically inside Redis, so every multi-key change
 * (a takeover, a leave with owner succession, a group formation) is all-or-nothing and no two
 * nodes can interleave. Every script checks first and writes after: a refusal changes nothing.
 *
 * Calling convention: KEYS[1] is the key prefix itself, and ARGV holds the script's own arguments.
 * The prefix carries a hash tag (`{ps}:` by default), so every key below hashes to the slot of
 * that tag: KEYS[1] names the slot, which is what routes the script to the right master on a Redis
 * Cluster, and the script derives every key it touches from the prefix inside Lua. Redis accepts
 * keys a script did not declare as long as they are in the declared key's slot on that node; the
 * key named KEYS[1] is never written. On one Redis the tag changes nothing.
 * A refusal is an error reply `PS<code> <message>`, which RedisStore turns into a ProtocolError
 * with that code.
 *
 * Key layout under the prefix (fp = fingerprint):
 * - `seq`               INCR counter: the score of every join and ticket, so order is arrival order
 * - `peers`             SET of registered fingerprints (stats)
 * - `kinds`             HASH identity kind -> registered peers of that kind (stats); a kind at 0 is deleted
 * - `aliases`           HASH alias -> fp
 * - `peer:<fp>`         HASH alias, conn (connection id), node (node id), meta (JSON text, kept verbatim),
 *                       kind (identityKind of fp, counted in `kinds`), verified ('1' proven key, '0' not),
 *                       resume (hash of its resume token, '' for none); while suspended also until (when
 *                       its grace ends, ms since the epoch, the callers' clock) and missed (messages dropped)
 * - `scopes:<fp>`       HASH scope name -> app_type the peer joined with
 * - `tickets:<fp>`      HASH namespace -> queue id of the peer's waiting match ticket
 * - `node:<node>`       SET of fingerprints registered through that node (removeNode); a suspended peer is in none
 * - `suspended`         ZSET of suspended fp scored by `until` (expireSuspended)
 * - `buffer:<fp>`       LIST of a suspended peer's messages, oldest first, trimmed to the newest `limit`
 * - `scope:<name>`      ZSET member fp scored by `seq`: namespace or room members, oldest first
 * - `room:<name>`       HASH owner, max: present exactly while the scope is a room
 * - `kicked:<name>`     HASH fp -> when its kick ban ends (ms since the epoch, the callers' clock); deleted with
 *                       the room, and its expired entries at each kick
 * - `namespaces`        SET of public namespace names that have members (stats)
 * - `queue:<queue id>`  ZSET waiting fp scored by `seq`; the queue id is namespace, group size and criteria,
 *                       NUL-separated, then NUL `open` for an open queue (MatchTicket.open)
 * - `avoid:<queue id>`  HASH waiting fp -> JSON array of the fingerprints its ticket avoids (only when it has some)
 * - `epoch`             random token written once per Redis lifetime (RedisStore notices a wiped Redis)
 * - `bans`              HASH ban id -> the ban as JSON text
 * - `banexp`            ZSET ban id scored by its expiry (ms since the epoch, the callers' clock): every
 *                       ban script first forgets the bans expired at the `now` it is given
 */

/** Helpers shared by the scripts; each script is this library followed by its body. */
const LIBRARY = `
local P = KEYS[1]
local function k(kind, id) return P .. kind .. ':' .. id end
local function fail(code, message) return redis.error_reply('PS' .. code .. ' ' .. message) end

local OPEN_SUFFIX = string.char(0) .. 'open'

local function dropTicket(fp, ns)
  local tickets = k('tickets', fp)
  local queue = redis.call('HGET', tickets, ns)
  if not queue then return false end
  redis.call('HDEL', tickets, ns)
  redis.call('ZREM', k('queue', queue), fp)
  redis.call('HDEL', k('avoid', queue), fp)
  return true
end

-- Drops the ticket of a peer leaving scope ns, unless it is open (it never needed the membership).
local function dropMembersTicket(fp, ns)
  local queue = redis.call('HGET', k('tickets', fp), ns)
  if queue and string.sub(queue, -#OPEN_SUFFIX) ~= OPEN_SUFFIX then dropTicket(fp, ns) end
end

local function countKind(kind, delta)
  if redis.call('HINCRBY', P .. 'kinds', kind, delta) <= 0 then redis.call('HDEL', P .. 'kinds', kind) end
end

-- {fp, alias, appType, metaJson, verified (1|0)}
local function memberInfo(fp, scope)
  local peer = redis.call('HMGET', k('peer', fp), 'alias', 'meta', 'verified')
  local verified = 0
  if peer[3] == '1' then verified = 1 end
  return {fp, peer[1] or '', redis.call('HGET', k('scopes', fp), scope) or '', peer[2] or '{}', verified}
end

-- {total, {member, ...}} with \`limit\` members after the \`offset\` oldest (default 0), oldest first.
local function page(scope, limit, offset)
  offset = offset or 0
  local key = k('scope', scope)
  local members = {}
  if limit > 0 then
    for _, fp in ipairs(redis.call('ZRANGE', key, offset, offset + limit - 1)) do members[#members + 1] = memberInfo(fp, scope) end
  end
  return {redis.call('ZCARD', key), members}
end

-- A 429 naming max_scopes_per_peer when fp would enter scope \`name\` while in \`max\` scopes
-- already ('' for no cap), else nil: a scope it is in passes.
local function scopeCapRefusal(fp, name, max)
  if max == '' then return nil end
  local scopes = k('scopes', fp)
  if redis.call('HEXISTS', scopes, name) == 0 and redis.call('HLEN', scopes) >= tonumber(max) then
    return fail(429, 'max_scopes_per_peer (' .. max .. ') reached')
  end
  return nil
end

-- Forgets the bans expired at \`now\` (ms, the caller's clock).
local function forgetExpiredBans(now)
  local expired = redis.call('ZRANGEBYSCORE', P .. 'banexp', '-inf', now)
  if #expired == 0 then return end
  for _, id in ipairs(expired) do redis.call('HDEL', P .. 'bans', id) end
  redis.call('ZREMRANGEBYSCORE', P .. 'banexp', '-inf', now)
end

-- {added, member, total, members, seq}; seq is the member's join score (JoinResult.seq)
local function addMember(scope, fp, appType, limit)
  local key = k('scope', scope)
  local added = 0
  local seq = tonumber(redis.call('ZSCORE', key, fp))
  if not seq then
    added = 1
    seq = redis.call('INCR', P .. 'seq')
    redis.call('ZADD', key, seq, fp)
    redis.call('HSET', k('scopes', fp), scope, appType)
    if redis.call('EXISTS', k('room', scope)) == 0 then redis.call('SADD', P .. 'namespaces', scope) end
  end
  local listed = page(scope, limit)
  return {added, memberInfo(fp, scope), listed[1], listed[2], seq}
end

-- The caller has checked membership.
local function removeMember(scope, fp)
  local key = k('scope', scope)
  redis.call('ZREM', key, fp)
  redis.call('HDEL', k('scopes', fp), scope)
  dropMembersTicket(fp, scope)
  local room = k('room', scope)
  if redis.call('ZCARD', key) == 0 then
    redis.call('DEL', room, k('kicked', scope))
    redis.call('SREM', P .. 'namespaces', scope)
  elseif redis.call('HGET', room, 'owner') == fp then
    -- Ownership passes to the member who joined earliest: the lowest score.
    redis.call('HSET', room, 'owner', redis.call('ZRANGE', key, 0, 0)[1])
  end
end

-- Removes a registered peer everywhere; returns the scopes it was in.
local function removePeer(fp)
  local scopes = redis.call('HKEYS', k('scopes', fp))
  for _, scope in ipairs(scopes) do removeMember(scope, fp) end
  for _, ns in ipairs(redis.call('HKEYS', k('tickets', fp))) do dropTicket(fp, ns) end
  local peer = redis.call('HMGET', k('peer', fp), 'alias', 'node')
  if peer[1] and redis.call('HGET', P .. 'aliases', peer[1]) == fp then redis.call('HDEL', P .. 'aliases', peer[1]) end
  if peer[2] then redis.call('SREM', k('node', peer[2]), fp) end
  redis.call('DEL', k('peer', fp), k('scopes', fp), k('tickets', fp), k('buffer', fp))
  redis.call('SREM', P .. 'peers', fp)
  redis.call('ZREM', P .. 'suspended', fp)
  return scopes
end

-- Removes a peer for good (unregister, removeNode), uncounting its kind; a takeover keeps the count.
local function forgetPeer(fp)
  local kind = redis.call('HGET', k('peer', fp), 'kind')
  local scopes = removePeer(fp)
  if kind then countKind(kind, -1) end
  return scopes
end

local function isPeer(fp) return redis.call('EXISTS', k('peer', fp)) == 1 end
`;

/** Script bodies by command name; each one's ARGV is listed above it. */
const BODIES = {
  // fp, connectionId, nodeId, kind, hasAlias ('1'|'0'), alias, metaJson, verified ('1'|'0'), resumeHash, candidate...
  // -> {alias, replacedConnectionId or '', {scope...}}; 409 when a verified holder meets an unverified newcomer
  psRegister: `
local fp, conn, node, kind, hasAlias, requested, meta, verified, resume = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local peerKey = k('peer', fp)
if verified ~= '1' and redis.call('HGET', peerKey, 'verified') == '1' then
  return fail(409, 'this key is held by a verified connection: only a signed register can replace it')
end
local ownAlias = redis.call('HGET', peerKey, 'alias')
local function isFree(alias)
  local holder = redis.call('HGET', P .. 'aliases', alias)
  return (not holder) or (holder == fp and alias == ownAlias)
end
local alias = nil
if hasAlias == '1' then
  if not isFree(requested) then return fail(409, 'alias is taken') end
  alias = requested
else
  for i = 10, #ARGV do
    if isFree(ARGV[i]) then alias = ARGV[i]; break end
  end
  if not alias then return fail(409, 'no free alias could be generated') end
end
-- A takeover is the same peer: it stays counted once (a record without a kind was never counted).
local replacedConn, scopes, counted = '', {}, false
if ownAlias then
  replacedConn = redis.call('HGET', peerKey, 'conn')
  counted = redis.call('HEXISTS', peerKey, 'kind') == 1
  scopes = removePeer(fp)
end
if not counted then countKind(kind, 1) end
redis.call('HSET', peerKey, 'alias', alias, 'conn', conn, 'node', node, 'meta', meta, 'kind', kind, 'verified', verified, 'resume', resume)
redis.call('HSET', P .. 'aliases', alias, fp)
redis.call('SADD', k('node', node), fp)
redis.call('SADD', P .. 'peers', fp)
return {alias, replacedConn, scopes}
`,

  // fp, connectionId -> {scope...} or false when that connection does not own the fingerprint
  psUnregister: `
local fp, conn = ARGV[1], ARGV[2]
if redis.call('HGET', k('peer', fp), 'conn') ~= conn then return false end
return forgetPeer(fp)
`,

  // to -> {fp, alias, conn, node, suspended (1|0)} or false
  psResolve: `
local to = ARGV[1]
local fp = to
if not isPeer(fp) then
  fp = redis.call('HGET', P .. 'aliases', to)
  if not fp then return false end
end
local peer = redis.call('HMGET', k('peer', fp), 'alias', 'conn', 'node', 'until')
if not peer[1] then return false end
local suspended = 0
if peer[4] then suspended = 1 end
return {fp, peer[1], peer[2], peer[3], suspended}
`,

  // from, to -> {fp, alias, conn, node, suspended (1|0)} of the target; 404 unknown, 400 self, 403 no shared scope
  psRoute: `
local from, to = ARGV[1], ARGV[2]
local fp = to
if not isPeer(fp) then
  fp = redis.call('HGET', P .. 'aliases', to)
  if not fp then return fail(404, 'peer not found') end
end
local peer = redis.call('HMGET', k('peer', fp), 'alias', 'conn', 'node', 'until')
if not peer[1] then return fail(404, 'peer not found') end
if fp == from then return fail(400, 'cannot send to yourself') end
local suspended = 0
if peer[4] then suspended = 1 end
local small, large = k('scopes', from), k('scopes', fp)
if redis.call('HLEN', small) > redis.call('HLEN', large) then small, large = large, small end
for _, scope in ipairs(redis.call('HKEYS', small)) do
  if redis.call('HEXISTS', large, scope) == 1 then return {fp, peer[1], peer[2], peer[3], suspended} end
end
return fail(403, 'no shared namespace')
`,

  // fp, connectionId, until -> 1 suspended, 0 when that connection does not hold fp or it is suspended already
  psSuspend: `
local fp, conn, untilMs = ARGV[1], ARGV[2], ARGV[3]
local peerKey = k('peer', fp)
local peer = redis.call('HMGET', peerKey, 'conn', 'node', 'until')
if peer[1] ~= conn or peer[3] then return 0 end
redis.call('HSET', peerKey, 'until', untilMs, 'missed', 0)
-- It belongs to no node now: removeNode leaves it, expireSuspended removes it.
if peer[2] then redis.call('SREM', k('node', peer[2]), fp) end
redis.call('ZADD', P .. 'suspended', untilMs, fp)
redis.call('DEL', k('buffer', fp))
return 1
`,

  // fp, resumeHash, connectionId, nodeId, verified ('1'|'0'), now
  // -> false (not resumable), or {alias, metaJson, replacedConnectionId or '', missed, {message...}, {name, appType, roomMax or '', ...}};
  // 409 when a verified holder meets an unverified newcomer
  psResume: `
local fp, hash, conn, node, verified, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local peerKey = k('peer', fp)
local peer = redis.call('HMGET', peerKey, 'alias', 'conn', 'node', 'meta', 'verified', 'resume', 'until', 'missed')
if not peer[1] or hash == '' or peer[6] ~= hash then return false end
if verified ~= '1' and peer[5] == '1' then
  return fail(409, 'this key is held by a verified connection: only a signed register can replace it')
end
if peer[7] and tonumber(peer[7]) <= tonumber(now) then return false end
local replaced = ''
if peer[7] then
  redis.call('ZREM', P .. 'suspended', fp)
else
  replaced = peer[2]
  redis.call('SREM', k('node', peer[3]), fp)
end
redis.call('HSET', peerKey, 'conn', conn, 'node', node, 'verified', verified)
redis.call('HDEL', peerKey, 'until', 'missed')
redis.call('SADD', k('node', node), fp)
local messages = redis.call('LRANGE', k('buffer', fp), 0, -1)
redis.call('DEL', k('buffer', fp))
local scopes = {}
local joined = redis.call('HGETALL', k('scopes', fp))
for i = 1, #joined, 2 do
  scopes[#scopes + 1] = joined[i]
  scopes[#scopes + 1] = joined[i + 1]
  scopes[#scopes + 1] = redis.call('HGET', k('room', joined[i]), 'max') or ''
end
return {peer[1], peer[4] or '{}', replaced, tonumber(peer[8] or '0'), messages, scopes}
`,

  // limit, message, fp... -> {fp...}: the suspended targets the message was appended to
  psBuffer: `
local limit, message = tonumber(ARGV[1]), ARGV[2]
local out = {}
for i = 3, #ARGV do
  local fp = ARGV[i]
  if redis.call('HEXISTS', k('peer', fp), 'until') == 1 then
    local key = k('buffer', fp)
    local length = redis.call('RPUSH', key, message)
    if length > limit then
      -- The newest \`limit\` stay; the dropped ones are counted for the resumed peer's \`missed\`.
      redis.call('LTRIM', key, length - limit, -1)
      redis.call('HINCRBY', k('peer', fp), 'missed', length - limit)
    end
    out[#out + 1] = fp
  end
end
return out
`,

  // now, batch -> {{fp, {scope...}}, ...}: removes up to \`batch\` peers whose suspension ended by \`now\`; call again while full
  psExpire: `
local now, batch = ARGV[1], tonumber(ARGV[2])
local out = {}
for _, fp in ipairs(redis.call('ZRANGEBYSCORE', P .. 'suspended', '-inf', now, 'LIMIT', 0, batch)) do
  out[#out + 1] = {fp, forgetPeer(fp)}
end
return out
`,

  // fp, expectedMetaJson, newMetaJson -> 1 written, 0 meta changed meanwhile (retry)
  psSetMeta: `
local fp, expected, meta = ARGV[1], ARGV[2], ARGV[3]
local current = redis.call('HGET', k('peer', fp), 'meta')
if not current then return fail(404, 'peer is not registered') end
if current ~= expected then return 0 end
redis.call('HSET', k('peer', fp), 'meta', meta)
return 1
`,

  // name, fp, appType, listLimit, hasMeta ('1'|'0'), expectedMetaJson, newMetaJson, maxScopes ('' for no cap)
  // -> {added, member, total, members, seq}, or 0 when the meta changed meanwhile (retry)
  psJoinNamespace: `
local name, fp, appType, limit, hasMeta, expected, meta = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], ARGV[6], ARGV[7]
if not isPeer(fp) then return fail(404, 'peer is not registered') end
if redis.call('EXISTS', k('room', name)) == 1 then return fail(403, 'this name is a private room: use join_room') end
local refusal = scopeCapRefusal(fp, name, ARGV[8])
if refusal then return refusal end
if hasMeta == '1' then
  if redis.call('HGET', k('peer', fp), 'meta') ~= expected then return 0 end
  redis.call('HSET', k('peer', fp), 'meta', meta)
end
return addMember(name, fp, appType, limit)
`,

  // name, fp -> 1
  psLeave: `
local name, fp = ARGV[1], ARGV[2]
if not isPeer(fp) then return fail(404, 'peer is not registered') end
if not redis.call('ZSCORE', k('scope', name), fp) then return fail(404, 'not a member') end
removeMember(name, fp)
return 1
`,

  // name, requester, limit, offset, operator ('1'|'0': rooms are listed to the operator too) -> {total, members}
  psList: `
local name, requester, limit, offset, operator = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
if operator ~= '1' and redis.call('EXISTS', k('room', name)) == 1 and not redis.call('ZSCORE', k('scope', name), requester) then
  return fail(403, 'rooms are visible to their members only')
end
return page(name, limit, offset)
`,

  // fp -> false, or {alias, conn, node, metaJson, {name, isRoom (1|0), appType, ...}}
  psPeer: `
local fp = ARGV[1]
local peer = redis.call('HMGET', k('peer', fp), 'alias', 'conn', 'node', 'meta', 'verified')
if not peer[1] then return false end
local scopes = {}
local joined = redis.call('HGETALL', k('scopes', fp))
for i = 1, #joined, 2 do
  scopes[#scopes + 1] = joined[i]
  scopes[#scopes + 1] = redis.call('EXISTS', k('room', joined[i]))
  scopes[#scopes + 1] = joined[i + 1]
end
return {peer[1], peer[2], peer[3], peer[4] or '{}', scopes, peer[5] or '0'}
`,

  // id, banJson, expiresAt, now -> 1
  psAddBan: `
local id, ban, expiresAt, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
forgetExpiredBans(now)
redis.call('HSET', P .. 'bans', id, ban)
redis.call('ZADD', P .. 'banexp', expiresAt, id)
return 1
`,

  // now -> {banJson...}: the bans in force
  psListBans: `
forgetExpiredBans(ARGV[1])
return redis.call('HVALS', P .. 'bans')
`,

  // id, now -> 1 when a ban in force was lifted, else 0
  psRemoveBan: `
local id, now = ARGV[1], ARGV[2]
forgetExpiredBans(now)
if redis.call('HDEL', P .. 'bans', id) == 0 then return 0 end
redis.call('ZREM', P .. 'banexp', id)
return 1
`,

  // a, b -> 1 when they share a scope, else 0
  psShares: `
local a, b = ARGV[1], ARGV[2]
local small, large = k('scopes', a), k('scopes', b)
if redis.call('HLEN', small) > redis.call('HLEN', large) then small, large = large, small end
for _, scope in ipairs(redis.call('HKEYS', small)) do
  if redis.call('HEXISTS', large, scope) == 1 then return 1 end
end
return 0
`,

  // roomId, owner, maxSize, maxScopes, maxRooms ('' for no cap) -> {peerCount, maxSize, owner}
  psCreateRoom: `
local id, owner, max, maxScopes, maxRooms = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if not isPeer(owner) then return fail(404, 'peer is not registered') end
if redis.call('EXISTS', k('scope', id)) == 1 or redis.call('EXISTS', k('room', id)) == 1 then
  return fail(409, 'a room or namespace with this id exists')
end
if maxRooms ~= '' then
  -- Only rooms it is in can be its own: no walk over every room.
  local owned = 0
  for _, scope in ipairs(redis.call('HKEYS', k('scopes', owner))) do
    if redis.call('HGET', k('room', scope), 'owner') == owner then owned = owned + 1 end
  end
  if owned >= tonumber(maxRooms) then return fail(429, 'max_rooms_per_peer (' .. maxRooms .. ') reached') end
end
local refusal = scopeCapRefusal(owner, id, maxScopes)
if refusal then return refusal end
redis.call('HSET', k('room', id), 'owner', owner, 'max', max)
addMember(id, owner, '', 0)
return {redis.call('ZCARD', k('scope', id)), max, owner}
`,

  // roomId, fp, listLimit, now ('' checks no kick ban), maxScopes ('' for no cap)
  // -> {added, member, total, members, seq, maxSize}
  psJoinRoom: `
local id, fp, limit, now, maxScopes = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
if not isPeer(fp) then return fail(404, 'peer is not registered') end
local max = redis.call('HGET', k('room', id), 'max')
if not max then return fail(404, 'no such room') end
if not redis.call('ZSCORE', k('scope', id), fp) then
  if now ~= '' then
    local banned = tonumber(redis.call('HGET', k('kicked', id), fp))
    if banned and banned > tonumber(now) then return fail(403, '${KICKED}') end
  end
  if redis.call('ZCARD', k('scope', id)) >= tonumber(max) then return fail(429, 'room is full') end
  local refusal = scopeCapRefusal(fp, id, maxScopes)
  if refusal then return refusal end
end
local joined = addMember(id, fp, '', limit)
joined[6] = tonumber(max)
return joined
`,

  // roomId -> {peerCount, maxSize, owner}
  psRoomInfo: `
local id = ARGV[1]
local room = redis.call('HMGET', k('room', id), 'owner', 'max')
if not room[1] then return fail(404, 'no such room') end
return {redis.call('ZCARD', k('scope', id)), room[2], room[1]}
`,

  // roomId, owner, target, now, until ('' '' for no ban) -> 1
  psKick: `
local id, owner, target, now, untilMs = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local current = redis.call('HGET', k('room', id), 'owner')
if not current then return fail(404, 'no such room') end
if current ~= owner then return fail(403, 'only the room owner can kick') end
if target == owner then return fail(400, 'the owner cannot kick itself; use leave') end
if not isPeer(target) or not redis.call('ZSCORE', k('scope', id), target) then return fail(404, 'peer is not in the room') end
removeMember(id, target)
if untilMs ~= '' and tonumber(untilMs) > tonumber(now) and redis.call('EXISTS', k('room', id)) == 1 then
  local kicked = k('kicked', id)
  -- Forgotten once expired, so a room keeps only the bans of the last kick_ban's kicks.
  local entries = redis.call('HGETALL', kicked)
  for i = 1, #entries, 2 do
    if tonumber(entries[i + 1]) <= tonumber(now) then redis.call('HDEL', kicked, entries[i]) end
  end
  redis.call('HSET', kicked, target, untilMs)
end
return 1
`,

  // namespace, fp, groupSize, queueId, sessionId, open ('1'|'0'), hasRoom ('1'|'0'), groupRoom,
  // maxTickets ('' for no cap), avoided fp... -> {'waiting'} or {'matched', sessionId, {member...}}
  psMatch: `
local ns, fp, size, queueId, sessionId, open, hasRoom, room, maxTickets = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]
if not isPeer(fp) then return fail(404, 'peer is not registered') end
if open ~= '1' and redis.call('HEXISTS', k('scopes', fp), ns) == 0 then return fail(403, 'join the namespace before matching') end
local avoidList, avoid = {}, {}
for i = 10, #ARGV do
  avoidList[#avoidList + 1] = ARGV[i]
  avoid[ARGV[i]] = true
end
local queue, avoids = k('queue', queueId), k('avoid', queueId)
-- First come, first served: the oldest waiting tickets compatible with the newcomer and with each
-- other, in both directions. Everything is decided before anything changes, so a refusal leaves
-- the earlier ticket in place.
local chosen, chosenAvoid = {}, {}
local needed, start = size - 1, 0
while #chosen < needed do
  local batch = redis.call('ZRANGE', queue, start, start + 63)
  if #batch == 0 then break end
  start = start + #batch
  for _, member in ipairs(batch) do
    if member ~= fp and not avoid[member] then
      local own = {}
      local listed = redis.call('HGET', avoids, member)
      if listed then
        for _, other in ipairs(cjson.decode(listed)) do own[other] = true end
      end
      local fits = not own[fp]
      for i = 1, #chosen do
        if own[chosen[i]] or chosenAvoid[i][member] then fits = false end
      end
      if fits then
        chosen[#chosen + 1] = member
        chosenAvoid[#chosenAvoid + 1] = own
        if #chosen == needed then break end
      end
    end
  end
end
if #chosen < needed then
  if maxTickets ~= '' then
    local tickets = k('tickets', fp)
    if redis.call('HLEN', tickets) - redis.call('HEXISTS', tickets, ns) >= tonumber(maxTickets) then
      return fail(429, 'max_tickets_per_peer (' .. maxTickets .. ') reached')
    end
  end
  dropTicket(fp, ns)
  redis.call('ZADD', queue, redis.call('INCR', P .. 'seq'), fp)
  redis.call('HSET', k('tickets', fp), ns, queueId)
  if #avoidList > 0 then redis.call('HSET', avoids, fp, cjson.encode(avoidList)) end
  return {'waiting'}
end
if hasRoom == '1' and (redis.call('EXISTS', k('scope', room)) == 1 or redis.call('EXISTS', k('room', room)) == 1) then
  return fail(409, "a room or namespace with the group room's id exists")
end
chosen[#chosen + 1] = fp
local group = {}
for _, member in ipairs(chosen) do group[#group + 1] = memberInfo(member, ns) end
for _, member in ipairs(chosen) do dropTicket(member, ns) end
if hasRoom == '1' then
  -- As if the oldest ticket's peer created the room and the others joined it in ticket order.
  redis.call('HSET', k('room', room), 'owner', chosen[1], 'max', size)
  for _, member in ipairs(chosen) do addMember(room, member, '', 0) end
end
return {'matched', sessionId, group}
`,

  // namespace, fp -> 1 when a ticket was dropped, else 0
  psCancelMatch: `
local ns, fp = ARGV[1], ARGV[2]
if not isPeer(fp) then return fail(404, 'peer is not registered') end
if dropTicket(fp, ns) then return 1 end
return 0
`,

  // nodeId, batch -> {remaining, {{fp, {scope...}}, ...}}: removes up to \`batch\` peers; call again while remaining > 0
  psRemoveNode: `
local node, batch = ARGV[1], tonumber(ARGV[2])
local set = k('node', node)
local out = {}
for _, fp in ipairs(redis.call('SPOP', set, batch)) do
  -- A peer that re-registered through another node is no longer listed here; this check is a safety net.
  if redis.call('HGET', k('peer', fp), 'node') == node then out[#out + 1] = {fp, forgetPeer(fp)} end
end
return {redis.call('SCARD', set), out}
`,

  // -> {totalPeers, {name, count, name, count, ...}, {kind, count, kind, count, ...}}
  psStats: `
local counts = {}
for _, name in ipairs(redis.call('SMEMBERS', P .. 'namespaces')) do
  counts[#counts + 1] = name
  counts[#counts + 1] = redis.call('ZCARD', k('scope', name))
end
return {redis.call('SCARD', P .. 'peers'), counts, redis.call('HGETALL', P .. 'kinds')}
`,

  // token -> the epoch token in force (the given one if there was none)
  psEpoch: `
local token = ARGV[1]
local current = redis.call('GET', P .. 'epoch')
if current then return current end
redis.call('SET', P .. 'epoch', token)
return token
`,

  // -> the run id of the server the script runs on ('' if INFO names none): on a Cluster, the
  // master that holds the state's slot
  psRunId: `
return string.match(redis.call('INFO', 'server'), 'run_id:(%w+)') or ''
`,
} as const;

export type ScriptName = keyof typeof BODIES;

/** Full Lua source of each script, ready for ioredis `defineCommand`. */
export const SCRIPTS: Readonly<Record<ScriptName, string>> = Object.fromEntries(
  Object.entries(BODIES).map(([name, body]) => [name, LIBRARY + body]),
) as Record<ScriptName, string>;

