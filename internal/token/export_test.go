package token

// Waiters is the number of callers waiting on the fetch in flight.
func Waiters(s *Source) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.call == nil {
		return 0
	}
	return s.call.waiters
}

// Fetching reports whether a request to the token endpoint is in flight,
// so tests can wait for a background refresh to land.
func Fetching(s *Source) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.call != nil
}
