//! When work starts: the arrival schedule of the open model ([`arrivals`]).

pub mod arrivals;
