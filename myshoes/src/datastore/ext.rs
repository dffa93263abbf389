use async_trait::async_trait;

use super::{Datastore, Result};
use crate::model::{GitHubHost, RepositoryName, Scope, Target};

/// Helpers built on [`Datastore`]'s required methods; implemented for every Datastore.
#[async_trait]
pub trait DatastoreExt: Datastore {
    /// Finds the target that receives jobs of `repository`: the repository's own target if
    /// it exists and can receive jobs, otherwise the target of the repository's owner
    /// (organization) if that one can receive jobs, otherwise `None`.
    ///
    /// `suspend` and `deleted` targets never receive jobs. Backend errors other than
    /// "not found" are returned.
    async fn find_target_for_repository(
        &self,
        host: &GitHubHost,
        repository: &RepositoryName,
    ) -> Result<Option<Target>> {
        let repository_scope = Scope::Repository(repository.clone());
        let organization_scope = Scope::Organization(repository.owner().to_owned());
        for scope in [repository_scope, organization_scope] {
            match self.get_target_by_scope(host, &scope).await {
                Ok(target) if target.can_receive_jobs() => return Ok(Some(target)),
                Ok(_) => {}
                Err(error) if error.is_not_found() => {}
                Err(error) => return Err(error),
            }
        }
        Ok(None)
    }
}

impl<T: Datastore + ?Sized> DatastoreExt for T {}
