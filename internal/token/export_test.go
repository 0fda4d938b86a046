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
