//! `telemetry.istio.io`: tracing, metrics and access-logging configuration per workload.

pub mod telemetry;
