//! `networking.istio.io`: traffic routing (VirtualService), policies per destination
//! (DestinationRule), edge listeners (Gateway), the service registry (ServiceEntry,
//! WorkloadEntry, WorkloadGroup) and sidecar scoping (Sidecar).

pub mod destination_rule;
pub mod gateway;
pub mod service_entry;
pub mod sidecar;
pub mod virtual_service;
pub mod workload_entry;
pub mod workload_group;
