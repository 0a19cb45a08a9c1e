//! Weight files (filled in by the reference work).
