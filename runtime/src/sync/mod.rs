//! Goroutine-aware synchronisation (Go's sema.go and package sync). Arrives with the channels issue.
