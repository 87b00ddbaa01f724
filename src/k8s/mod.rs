//! Kubernetes on a Talos node: everything a control plane and a kubelet need rendered, as
//! Talos 1.7 renders it, built from typed Kubernetes structs (`k8s-openapi`, Kubernetes 1.30).
//!
//! | module | what |
//! |---|---|
//! | [`args`] | component flags with Talos's merge policies for `extraArgs` |
//! | [`pods`] | the kube-apiserver, kube-controller-manager and kube-scheduler static pods |
//! | [`configs`] | the files the static pods read: admission control, audit policy, scheduler config, encryption config |
//! | [`manifests`] | the bootstrap manifests (token, RBAC, kube-proxy, CoreDNS, Flannel, …) and manifest parsing |
//! | [`kubelet`] | the kubelet's `KubeletConfiguration` and flags |
//! | [`kubeconfig`] | generated kubeconfigs and merging into `~/.kube/config` |
//! | [`quantity`] | resource quantities |
//! | [`apply`] | a minimal Kubernetes REST client that creates manifest objects |
//!
//! Kubernetes itself (kube-apiserver, kubelet, their images) is not part of talos-rs: these
//! modules produce what those programs read; they never pretend to be them.

pub mod apply;
pub mod args;
pub mod configs;
pub mod kubeconfig;
pub mod kubelet;
pub mod manifests;
pub mod pods;
pub mod quantity;
