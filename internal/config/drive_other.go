//go:build !windows

package config

// MissingPathAdvice says what to do about path when creating it failed
// with err because its drive or share does not exist: nothing to add on
// a system with one tree of paths.
func MissingPathAdvice(path string, err error) string { return "" }
