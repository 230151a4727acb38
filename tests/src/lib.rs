//! The testbed: assembles the real parts (see its issue).
