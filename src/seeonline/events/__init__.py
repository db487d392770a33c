"""Live events: the commit-ordered event log, its one listener per process, and the SSE stream."""
