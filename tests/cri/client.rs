//! A blocking CRI client: kubelet's calls over containerd's unix socket, each bounded in time.

use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::*;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tonic::transport::{Channel, Endpoint, Uri};

/// Every call gives up after this, so a hung runtime fails a step instead of the whole run.
const CALL: Duration = Duration::from_secs(60);

pub struct Cri {
    rt: tokio::runtime::Runtime,
    rs: RuntimeServiceClient<Channel>,
}

pub type R<T> = Result<T, String>;

impl Cri {
    pub fn connect(sock: &Path) -> R<Cri> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))?;
        let path: PathBuf = sock.to_path_buf();
        let channel = rt.block_on(async {
            // The URI is a placeholder: the connector always dials the socket.
            Endpoint::try_from("http://[::]:50051")
                .map_err(|e| e.to_string())?
                .connect_with_connector(tower::service_fn(move |_: Uri| {
                    let path = path.clone();
                    async move {
                        let s = tokio::net::UnixStream::connect(path).await?;
                        Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(s))
                    }
                }))
                .await
                .map_err(|e| format!("connect {}: {e}", sock.display()))
        })?;
        Ok(Cri {
            rt,
            rs: RuntimeServiceClient::new(channel),
        })
    }

    fn call<T, F>(&mut self, what: &str, f: impl FnOnce(RuntimeServiceClient<Channel>) -> F) -> R<T>
    where
        F: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let fut = f(self.rs.clone());
        match self
            .rt
            .block_on(async { tokio::time::timeout(CALL, fut).await })
        {
            Ok(Ok(r)) => Ok(r.into_inner()),
            Ok(Err(st)) => Err(format!("{what}: {:?}: {}", st.code(), st.message())),
            Err(_) => Err(format!("{what}: no answer in {CALL:?}")),
        }
    }

    pub fn version(&mut self) -> R<VersionResponse> {
        self.call("Version", |mut c| async move {
            c.version(VersionRequest {
                version: "v1".into(),
            })
            .await
        })
    }

    pub fn run_pod(&mut self, config: PodSandboxConfig, handler: &str) -> R<String> {
        let req = RunPodSandboxRequest {
            config: Some(config),
            runtime_handler: handler.into(),
        };
        self.call("RunPodSandbox", |mut c| async move {
            c.run_pod_sandbox(req).await
        })
        .map(|r| r.pod_sandbox_id)
    }

    pub fn pod_status(&mut self, id: &str) -> R<PodSandboxStatus> {
        let req = PodSandboxStatusRequest {
            pod_sandbox_id: id.into(),
            verbose: false,
        };
        self.call("PodSandboxStatus", |mut c| async move {
            c.pod_sandbox_status(req).await
        })?
        .status
        .ok_or_else(|| "PodSandboxStatus: no status".into())
    }

    pub fn stop_pod(&mut self, id: &str) -> R<()> {
        let req = StopPodSandboxRequest {
            pod_sandbox_id: id.into(),
        };
        self.call("StopPodSandbox", |mut c| async move {
            c.stop_pod_sandbox(req).await
        })
        .map(drop)
    }

    pub fn remove_pod(&mut self, id: &str) -> R<()> {
        let req = RemovePodSandboxRequest {
            pod_sandbox_id: id.into(),
        };
        self.call("RemovePodSandbox", |mut c| async move {
            c.remove_pod_sandbox(req).await
        })
        .map(drop)
    }

    pub fn list_pods(&mut self) -> R<Vec<PodSandbox>> {
        self.call("ListPodSandbox", |mut c| async move {
            c.list_pod_sandbox(ListPodSandboxRequest { filter: None })
                .await
        })
        .map(|r| r.items)
    }

    pub fn create(
        &mut self,
        pod: &str,
        config: ContainerConfig,
        sandbox: &PodSandboxConfig,
    ) -> R<String> {
        let req = CreateContainerRequest {
            pod_sandbox_id: pod.into(),
            config: Some(config),
            sandbox_config: Some(sandbox.clone()),
        };
        self.call("CreateContainer", |mut c| async move {
            c.create_container(req).await
        })
        .map(|r| r.container_id)
    }

    pub fn start(&mut self, id: &str) -> R<()> {
        let req = StartContainerRequest {
            container_id: id.into(),
        };
        self.call("StartContainer", |mut c| async move {
            c.start_container(req).await
        })
        .map(drop)
    }

    pub fn status(&mut self, id: &str) -> R<ContainerStatus> {
        let req = ContainerStatusRequest {
            container_id: id.into(),
            verbose: false,
        };
        self.call("ContainerStatus", |mut c| async move {
            c.container_status(req).await
        })?
        .status
        .ok_or_else(|| "ContainerStatus: no status".into())
    }

    /// Runs `cmd` in container `id`; Ok(stdout) only when it exits 0.
    pub fn exec(&mut self, id: &str, cmd: &[&str]) -> R<String> {
        let req = ExecSyncRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: 30,
        };
        let r = self.call("ExecSync", |mut c| async move { c.exec_sync(req).await })?;
        let out = String::from_utf8_lossy(&r.stdout).into_owned();
        if r.exit_code != 0 {
            return Err(format!(
                "ExecSync {cmd:?}: exit {}: {}{}",
                r.exit_code,
                String::from_utf8_lossy(&r.stderr).trim(),
                out.trim()
            ));
        }
        Ok(out)
    }

    pub fn update(&mut self, id: &str, linux: LinuxContainerResources) -> R<()> {
        let req = UpdateContainerResourcesRequest {
            container_id: id.into(),
            linux: Some(linux),
            ..Default::default()
        };
        self.call("UpdateContainerResources", |mut c| async move {
            c.update_container_resources(req).await
        })
        .map(drop)
    }

    pub fn stats(&mut self, id: &str) -> R<ContainerStats> {
        let req = ContainerStatsRequest {
            container_id: id.into(),
        };
        self.call("ContainerStats", |mut c| async move {
            c.container_stats(req).await
        })?
        .stats
        .ok_or_else(|| "ContainerStats: no stats".into())
    }

    pub fn stop(&mut self, id: &str, timeout: i64) -> R<()> {
        let req = StopContainerRequest {
            container_id: id.into(),
            timeout,
        };
        self.call("StopContainer", |mut c| async move {
            c.stop_container(req).await
        })
        .map(drop)
    }

    pub fn remove(&mut self, id: &str) -> R<()> {
        let req = RemoveContainerRequest {
            container_id: id.into(),
        };
        self.call("RemoveContainer", |mut c| async move {
            c.remove_container(req).await
        })
        .map(drop)
    }

    pub fn list_containers(&mut self, pod: &str) -> R<Vec<Container>> {
        let req = ListContainersRequest {
            filter: Some(ContainerFilter {
                pod_sandbox_id: pod.into(),
                ..Default::default()
            }),
        };
        self.call("ListContainers", |mut c| async move {
            c.list_containers(req).await
        })
        .map(|r| r.containers)
    }
}
