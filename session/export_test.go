package session

// CacheUp reports whether the near-cache is serving (tests wait for it).
func (m *Manager) CacheUp() bool { return m.cache.up.Load() }

// ParseToken exposes parseToken to the external tests.
var ParseToken = parseToken
