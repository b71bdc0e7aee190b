package policy

import (
	"encoding/binary"
	"hash/maphash"
	"sync"
)

const (
	// defaultCacheEntries is Options.CacheEntries' zero value.
	defaultCacheEntries = 32768
	// maxCacheKey is the longest request, in bytes of its encoded subjects,
	// method and path, whose decision is cached; longer ones are decided
	// every time, so no entry holds more than about this much.
	maxCacheKey = 1024
	cacheShards = 32
)

// decisionCache remembers decisions of one policy (it lives in the state,
// so a new policy starts with an empty one and an answer can never come
// from another). It holds at most its bound of entries: each shard keeps a
// current and a previous map, and when the current one is full it becomes
// the previous one and the previous one is dropped; a hit in the previous
// map moves the entry to the current one. Hot requests stay, a flood of
// one-off paths only replaces the rest.
type decisionCache struct {
	seed   maphash.Seed
	half   int // entries per map per shard
	shards [cacheShards]cacheShard
}

type cacheShard struct {
	mu       sync.RWMutex
	cur, old map[uint64]cacheEntry
	_        [24]byte // a shard fills a 64-byte cache line
}

type cacheEntry struct {
	key string // the encoded request; a hash collision is a miss
	d   Decision
}

// newDecisionCache returns a cache holding at most entries decisions, or
// nil (no caching) when entries is negative.
func newDecisionCache(entries int) *decisionCache {
	if entries < 0 {
		return nil
	}
	half := max(entries/(2*cacheShards), 1)
	c := &decisionCache{seed: maphash.MakeSeed(), half: half}
	for i := range c.shards {
		c.shards[i].cur = make(map[uint64]cacheEntry)
	}
	return c
}

// bound is the most entries the cache holds.
func (c *decisionCache) bound() int { return 2 * c.half * cacheShards }

// appendKey encodes a request unambiguously: each part preceded by its
// length. ok is false when the key would be longer than maxCacheKey.
func appendKey(b []byte, sub string, roles []string, method, path string) (_ []byte, ok bool) {
	n := len(sub) + len(method) + len(path) + 4*(3+len(roles))
	for _, r := range roles {
		n += len(r)
	}
	if n > maxCacheKey {
		return b, false
	}
	for _, s := range [...]string{sub, method, path} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	for _, r := range roles {
		b = binary.AppendUvarint(b, uint64(len(r)))
		b = append(b, r...)
	}
	return b, true
}

func (c *decisionCache) get(key []byte) (Decision, uint64, bool) {
	h := maphash.Bytes(c.seed, key)
	sh := &c.shards[h%cacheShards]
	sh.mu.RLock()
	e, ok := sh.cur[h]
	sh.mu.RUnlock()
	if ok && e.key == string(key) {
		return e.d, h, true
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e, ok = sh.old[h]; !ok || e.key != string(key) {
		return Decision{}, h, false
	}
	delete(sh.old, h)
	sh.putLocked(h, e, c.half)
	return e.d, h, true
}

// put stores d for the request key, whose hash get returned.
func (c *decisionCache) put(h uint64, key []byte, d Decision) {
	sh := &c.shards[h%cacheShards]
	e := cacheEntry{key: string(key), d: d}
	sh.mu.Lock()
	sh.putLocked(h, e, c.half)
	sh.mu.Unlock()
}

func (sh *cacheShard) putLocked(h uint64, e cacheEntry, half int) {
	if _, ok := sh.cur[h]; !ok && len(sh.cur) >= half {
		sh.old, sh.cur = sh.cur, make(map[uint64]cacheEntry, half)
	}
	sh.cur[h] = e
}

// len returns the number of entries held.
func (c *decisionCache) len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		n += len(sh.cur) + len(sh.old)
		sh.mu.RUnlock()
	}
	return n
}
