//! Channels and `select` (Go's chan.go, select.go). Arrives with the channels issue.
