//! goop.http: outbound HTTP for data functions and commands, with SSRF filtering at connect time.
