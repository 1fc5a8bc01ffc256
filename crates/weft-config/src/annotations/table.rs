//! The annotations and labels Istio defines (istio/api `annotation/annotations.yaml` and
//! `label/labels.yaml`), so that a misspelt, misplaced or deprecated key can be told apart
//! from a real one. The base is the generated catalogue of istio/api around Istio 1.23;
//! later additions named in Istio's release notes are appended and marked as such.

/// How mature Istio considers an annotation or label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeatureStatus {
    Alpha,
    Beta,
    Stable,
}

/// One annotation or label Istio defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Definition {
    /// The full key, e.g. `sidecar.istio.io/proxyCPU`.
    pub name: &'static str,
    /// Istio's maturity level for it.
    pub status: FeatureStatus,
    /// Left out of Istio's documentation (internal or experimental), but still recognised.
    pub hidden: bool,
    /// Marked deprecated by Istio.
    pub deprecated: bool,
    /// What to use instead, when there is a replacement (a phrase: "the X label").
    pub replacement: Option<&'static str>,
    /// Resource kinds it belongs on (`Pod`, `Service`, ...); `Any` means every kind.
    pub resources: &'static [&'static str],
}

impl Definition {
    /// Whether it belongs on objects of `kind`.
    pub fn applies_to(&self, kind: &str) -> bool {
        self.resources.iter().any(|r| *r == "Any" || *r == kind)
    }
}

use FeatureStatus::{Alpha, Beta, Stable};

const POD: &[&str] = &["Pod"];

const fn def(
    name: &'static str,
    status: FeatureStatus,
    resources: &'static [&'static str],
) -> Definition {
    Definition {
        name,
        status,
        hidden: false,
        deprecated: false,
        replacement: None,
        resources,
    }
}

const fn hidden(d: Definition) -> Definition {
    Definition { hidden: true, ..d }
}

const fn deprecated(d: Definition, replacement: Option<&'static str>) -> Definition {
    Definition {
        deprecated: true,
        replacement,
        ..d
    }
}

/// Every annotation Istio defines.
pub static ANNOTATIONS: &[Definition] = &[
    hidden(deprecated(
        def(
            "alpha.istio.io/canonical-serviceaccounts",
            Alpha,
            &["Service"],
        ),
        None,
    )),
    hidden(deprecated(
        def(
            "alpha.istio.io/kubernetes-serviceaccounts",
            Alpha,
            &["Service"],
        ),
        None,
    )),
    hidden(def("ambient.istio.io/bypass-inbound-capture", Alpha, POD)),
    def("ambient.istio.io/redirection", Beta, POD),
    hidden(def(
        "ambient.istio.io/waypoint-inbound-binding",
        Alpha,
        &["GatewayClass", "Gateway"],
    )),
    def("galley.istio.io/analyze-suppress", Alpha, &["Any"]),
    hidden(def("gateway.istio.io/controller-version", Alpha, &["Any"])),
    hidden(def("gateway.istio.io/name-override", Alpha, &["Gateway"])),
    hidden(def("gateway.istio.io/service-account", Alpha, &["Gateway"])),
    def("inject.istio.io/templates", Alpha, POD),
    hidden(def(
        "istio.io/autoRegistrationGroup",
        Alpha,
        &["WorkloadEntry"],
    )),
    hidden(def("istio.io/connectedAt", Alpha, &["WorkloadEntry"])),
    hidden(def("istio.io/disconnectedAt", Alpha, &["WorkloadEntry"])),
    def("istio.io/dry-run", Alpha, &["AuthorizationPolicy"]),
    def("istio.io/rev", Alpha, POD),
    hidden(def(
        "istio.io/workloadController",
        Alpha,
        &["WorkloadEntry"],
    )),
    def("kubernetes.io/ingress.class", Stable, &["Ingress"]),
    def("networking.istio.io/exportTo", Alpha, &["Service"]),
    hidden(def("networking.istio.io/service-type", Alpha, &["Gateway"])),
    // Namespace since Istio 1.30 (release notes).
    def(
        "networking.istio.io/traffic-distribution",
        Alpha,
        &["Service", "ServiceEntry", "Namespace"],
    ),
    def("prometheus.istio.io/merge-metrics", Alpha, POD),
    def("proxy.istio.io/config", Beta, POD),
    hidden(def("proxy.istio.io/overrides", Alpha, POD)),
    def(
        "readiness.status.sidecar.istio.io/applicationPorts",
        Alpha,
        POD,
    ),
    def(
        "readiness.status.sidecar.istio.io/failureThreshold",
        Alpha,
        POD,
    ),
    def(
        "readiness.status.sidecar.istio.io/initialDelaySeconds",
        Alpha,
        POD,
    ),
    def(
        "readiness.status.sidecar.istio.io/periodSeconds",
        Alpha,
        POD,
    ),
    def("sidecar.istio.io/agentLogLevel", Alpha, POD),
    def("sidecar.istio.io/bootstrapOverride", Alpha, POD),
    def("sidecar.istio.io/componentLogLevel", Alpha, POD),
    deprecated(
        def("sidecar.istio.io/discoveryAddress", Alpha, POD),
        Some("`discoveryAddress` in the proxy.istio.io/config annotation"),
    ),
    def("sidecar.istio.io/enableCoreDump", Alpha, POD),
    deprecated(
        def("sidecar.istio.io/extraStatTags", Alpha, POD),
        Some("tag overrides in the Telemetry API"),
    ),
    deprecated(
        def("sidecar.istio.io/inject", Beta, POD),
        Some("the \"sidecar.istio.io/inject\" label"),
    ),
    def("sidecar.istio.io/interceptionMode", Alpha, POD),
    def("sidecar.istio.io/logLevel", Alpha, POD),
    def("sidecar.istio.io/nativeSidecar", Alpha, POD),
    def("sidecar.istio.io/proxyCPU", Alpha, POD),
    def("sidecar.istio.io/proxyCPULimit", Alpha, POD),
    def("sidecar.istio.io/proxyImage", Alpha, POD),
    def("sidecar.istio.io/proxyImageType", Alpha, POD),
    def("sidecar.istio.io/proxyMemory", Alpha, POD),
    def("sidecar.istio.io/proxyMemoryLimit", Alpha, POD),
    def("sidecar.istio.io/rewriteAppHTTPProbers", Alpha, POD),
    def("sidecar.istio.io/statsHistogramBuckets", Alpha, POD),
    deprecated(
        def("sidecar.istio.io/statsInclusionPrefixes", Alpha, POD),
        Some("`proxyStatsMatcher` in the proxy.istio.io/config annotation"),
    ),
    deprecated(
        def("sidecar.istio.io/statsInclusionRegexps", Alpha, POD),
        Some("`proxyStatsMatcher` in the proxy.istio.io/config annotation"),
    ),
    deprecated(
        def("sidecar.istio.io/statsInclusionSuffixes", Alpha, POD),
        Some("`proxyStatsMatcher` in the proxy.istio.io/config annotation"),
    ),
    def("sidecar.istio.io/status", Alpha, POD),
    def("sidecar.istio.io/userVolume", Alpha, POD),
    def("sidecar.istio.io/userVolumeMount", Alpha, POD),
    def("status.sidecar.istio.io/port", Alpha, POD),
    def(
        "topology.istio.io/controlPlaneClusters",
        Alpha,
        &["Namespace"],
    ),
    def("traffic.istio.io/nodeSelector", Stable, &["Service"]),
    def("traffic.sidecar.istio.io/excludeInboundPorts", Alpha, POD),
    def("traffic.sidecar.istio.io/excludeInterfaces", Alpha, POD),
    def(
        "traffic.sidecar.istio.io/excludeOutboundIPRanges",
        Alpha,
        POD,
    ),
    def("traffic.sidecar.istio.io/excludeOutboundPorts", Alpha, POD),
    def("traffic.sidecar.istio.io/includeInboundPorts", Alpha, POD),
    def(
        "traffic.sidecar.istio.io/includeOutboundIPRanges",
        Alpha,
        POD,
    ),
    def("traffic.sidecar.istio.io/includeOutboundPorts", Alpha, POD),
    // Deprecated in Istio 1.25 (release notes).
    deprecated(
        def("traffic.sidecar.istio.io/kubevirtInterfaces", Alpha, POD),
        Some("the \"istio.io/reroute-virtual-interfaces\" annotation"),
    ),
    // Added after the base catalogue, per Istio's release notes (1.23-1.28).
    def("ambient.istio.io/dns-capture", Alpha, POD),
    def("istio.io/reroute-virtual-interfaces", Alpha, POD),
    deprecated(
        def("sidecar.istio.io/statsCompression", Alpha, POD),
        Some("`statsCompression` in the proxy.istio.io/config annotation"),
    ),
    def("sidecar.istio.io/statsEvictionInterval", Alpha, POD),
    def("sidecar.istio.io/statsFlushInterval", Alpha, POD),
];

/// Every label Istio defines.
pub static LABELS: &[Definition] = &[
    def(
        "gateway.istio.io/managed",
        Stable,
        &["ServiceAccount", "Deployment", "Service"],
    ),
    def(
        "gateway.networking.k8s.io/gateway-name",
        Stable,
        &["ServiceAccount", "Deployment", "Service"],
    ),
    def("istio.io/dataplane-mode", Stable, &["Pod", "Namespace"]),
    def("istio.io/rev", Alpha, &["Namespace"]),
    def("istio.io/tag", Alpha, &["Namespace"]),
    def(
        "istio.io/use-waypoint",
        Stable,
        &[
            "Pod",
            "WorkloadEntry",
            "Service",
            "ServiceEntry",
            "Namespace",
        ],
    ),
    def(
        "istio.io/use-waypoint-namespace",
        Beta,
        &[
            "Pod",
            "WorkloadEntry",
            "Service",
            "ServiceEntry",
            "Namespace",
        ],
    ),
    def(
        "istio.io/waypoint-for",
        Stable,
        &["GatewayClass", "Gateway"],
    ),
    def(
        "networking.istio.io/enable-autoallocate-ip",
        Beta,
        &["ServiceEntry"],
    ),
    def("networking.istio.io/gatewayPort", Alpha, &["Service"]),
    hidden(def("operator.istio.io/component", Alpha, &["Any"])),
    hidden(def("operator.istio.io/managed", Alpha, &["Any"])),
    hidden(def("operator.istio.io/version", Alpha, &["Any"])),
    hidden(deprecated(
        def("security.istio.io/tlsMode", Alpha, POD),
        None,
    )),
    def("service.istio.io/canonical-name", Alpha, POD),
    def("service.istio.io/canonical-revision", Alpha, POD),
    def("sidecar.istio.io/inject", Beta, POD),
    def("topology.istio.io/cluster", Alpha, POD),
    def(
        "topology.istio.io/network",
        Beta,
        &["Namespace", "Pod", "Service"],
    ),
    def("topology.istio.io/subzone", Beta, &["Node"]),
    // Read by Istio but added after the base catalogue (release notes and istiod code).
    def(
        "istio.io/ingress-use-waypoint",
        Alpha,
        &["Service", "ServiceEntry", "Namespace"],
    ),
    def(
        "service.istio.io/workload-name",
        Alpha,
        &["Pod", "WorkloadEntry"],
    ),
    def(
        "topology.istio.io/locality",
        Alpha,
        &["Pod", "WorkloadEntry"],
    ),
];

/// The annotation named `name`, if Istio defines it.
pub fn annotation(name: &str) -> Option<&'static Definition> {
    ANNOTATIONS.iter().find(|d| d.name == name)
}

/// The label named `name`, if Istio defines it.
pub fn label(name: &str) -> Option<&'static Definition> {
    LABELS.iter().find(|d| d.name == name)
}
