//! Reference forward passes on the CPU (filled in by the reference work).
