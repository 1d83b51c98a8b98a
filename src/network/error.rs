//! The network errors a caller branches on, worded as docker's daemon words them; the engine
//! carries them up as `EngineError::Network`.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkError {
    #[error("network {0} not found")]
    NotFound(String),
    #[error("network with name {0} already exists")]
    NameExists(String),
    /// Containers still have endpoints on it (`containers` names them, for a caller's detail).
    #[error("error while removing network: network {name} id {id} has active endpoints")]
    InUse {
        name: String,
        id: String,
        containers: Vec<String>,
    },
    #[error("{0} is a pre-defined network and cannot be removed")]
    Predefined(String),
}
