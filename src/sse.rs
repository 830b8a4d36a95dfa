//! Server-sent-events framing: splitting a byte stream into whole events.
