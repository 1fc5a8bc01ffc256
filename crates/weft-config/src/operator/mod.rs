//! `install.istio.io` IstioOperator: the installation manifest, whose `meshConfig` is the
//! mesh's MeshConfig and whose `values` carry install-time settings.

pub mod istio_operator;
pub mod values;
