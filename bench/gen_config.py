#!/usr/bin/env python3
"""Writes a directory of N realistic Istio + Kubernetes resources for benchmarking
`weft validate`: per service a Service, a Deployment, a DestinationRule with subsets and a
VirtualService with a header match and a weighted split; every tenth service also gets an
AuthorizationPolicy and a PeerAuthentication. Files hold several documents, as in GitOps
repos."""
import os
import sys

def service(i, ns):
    name = f"svc-{i:05d}"
    return f"""apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: {ns}
  labels: {{app: {name}}}
spec:
  selector: {{app: {name}}}
  ports:
  - {{name: http, port: 8080, targetPort: 8080}}
  - {{name: grpc-api, port: 9090, targetPort: 9090}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}-v1
  namespace: {ns}
spec:
  replicas: 3
  selector:
    matchLabels: {{app: {name}, version: v1}}
  template:
    metadata:
      labels: {{app: {name}, version: v1}}
      annotations:
        sidecar.istio.io/proxyCPU: 100m
    spec:
      serviceAccountName: {name}
      containers:
      - name: app
        image: registry.example/{name}:1.0.{i}
        ports:
        - {{name: http, containerPort: 8080}}
        resources:
          requests: {{cpu: 100m, memory: 128Mi}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: {name}
  namespace: {ns}
spec:
  host: {name}.{ns}.svc.cluster.local
  trafficPolicy:
    loadBalancer: {{simple: LEAST_REQUEST}}
    connectionPool:
      tcp: {{maxConnections: 100, connectTimeout: 2s}}
      http: {{http1MaxPendingRequests: 64, maxRequestsPerConnection: 10}}
    outlierDetection:
      consecutive5xxErrors: 5
      interval: 10s
      baseEjectionTime: 30s
      maxEjectionPercent: 50
  subsets:
  - name: v1
    labels: {{version: v1}}
  - name: v2
    labels: {{version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: {name}
  namespace: {ns}
spec:
  hosts: [{name}]
  http:
  - name: canary-testers
    match:
    - headers:
        x-canary: {{exact: "true"}}
      uri: {{prefix: /api/}}
    route:
    - destination: {{host: {name}, subset: v2}}
    timeout: 5s
  - route:
    - destination: {{host: {name}, subset: v1}}
      weight: 90
    - destination: {{host: {name}, subset: v2}}
      weight: 10
    retries: {{attempts: 3, perTryTimeout: 1s, retryOn: "5xx,connect-failure"}}
"""

def policies(i, ns):
    name = f"svc-{i:05d}"
    return f"""---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: {name}
  namespace: {ns}
spec:
  selector:
    matchLabels: {{app: {name}}}
  rules:
  - from:
    - source:
        principals: [cluster.local/ns/{ns}/sa/frontend]
    to:
    - operation:
        methods: [GET, POST]
        paths: [/api/*]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: {name}
  namespace: {ns}
spec:
  selector:
    matchLabels: {{app: {name}}}
  mtls: {{mode: STRICT}}
"""

def main():
    total = int(sys.argv[1])
    out = sys.argv[2]
    written = 0
    i = 0
    while written < total:
        ns = f"team-{i % 20:02d}"
        d = os.path.join(out, ns)
        os.makedirs(d, exist_ok=True)
        text = service(i, ns)
        n = 4
        if i % 10 == 0 and written + 6 <= total:
            text += policies(i, ns)
            n = 6
        if written + n > total:
            # Keep the count exact: only the leading documents of the last service.
            docs = text.split("\n---\n")[: total - written]
            text = "\n---\n".join(docs) + "\n"
            n = len(docs)
        with open(os.path.join(d, f"svc-{i:05d}.yaml"), "w") as f:
            f.write(text)
        written += n
        i += 1
    print(f"{written} resources in {i} files under {out}")

if __name__ == "__main__":
    main()
