//! Weight layout and capacity planning (filled in by the layout work).
