//! `Datastore` for `Arc<T>` and `Box<T>`, so wrappers and generic code accept either.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{AckHandle, Datastore, DeadLetter, LockLease, ReceivedJob, Result};
use crate::model::{
    GitHubHost, Job, JobId, ResourceType, Runner, RunnerId, Scope, Target, TargetId, TargetStatus,
};

macro_rules! forward_datastore {
    ($wrapper:ident) => {
        #[deny(clippy::missing_trait_methods)]
        #[async_trait]
        impl<T: Datastore + ?Sized> Datastore for $wrapper<T> {
            async fn create_target(&self, target: &Target) -> Result<()> {
                (**self).create_target(target).await
            }
            async fn get_target(&self, id: TargetId) -> Result<Target> {
                (**self).get_target(id).await
            }
            async fn get_target_by_scope(
                &self,
                host: &GitHubHost,
                scope: &Scope,
            ) -> Result<Target> {
                (**self).get_target_by_scope(host, scope).await
            }
            async fn list_targets(&self) -> Result<Vec<Target>> {
                (**self).list_targets().await
            }
            async fn delete_target(&self, id: TargetId) -> Result<()> {
                (**self).delete_target(id).await
            }
            async fn update_target_status(
                &self,
                id: TargetId,
                status: TargetStatus,
                description: Option<&str>,
            ) -> Result<()> {
                (**self).update_target_status(id, status, description).await
            }
            async fn update_target_resource_type(
                &self,
                id: TargetId,
                resource_type: ResourceType,
            ) -> Result<()> {
                (**self)
                    .update_target_resource_type(id, resource_type)
                    .await
            }
            async fn enqueue_job(&self, job: &Job) -> Result<()> {
                (**self).enqueue_job(job).await
            }
            async fn receive_jobs(&self, max: usize, wait: Duration) -> Result<Vec<ReceivedJob>> {
                (**self).receive_jobs(max, wait).await
            }
            async fn list_jobs(&self) -> Result<Vec<Job>> {
                (**self).list_jobs().await
            }
            async fn delete_job(&self, ack: &AckHandle) -> Result<()> {
                (**self).delete_job(ack).await
            }
            async fn retry_job(&self, ack: &AckHandle, delay: Duration) -> Result<()> {
                (**self).retry_job(ack, delay).await
            }
            async fn create_runner(&self, runner: &Runner) -> Result<()> {
                (**self).create_runner(runner).await
            }
            async fn get_runner(&self, id: RunnerId) -> Result<Runner> {
                (**self).get_runner(id).await
            }
            async fn list_runners(&self) -> Result<Vec<Runner>> {
                (**self).list_runners().await
            }
            async fn list_runners_by_target(&self, target_id: TargetId) -> Result<Vec<Runner>> {
                (**self).list_runners_by_target(target_id).await
            }
            async fn delete_runner(
                &self,
                id: RunnerId,
                reason: &str,
                deleted_at: DateTime<Utc>,
            ) -> Result<()> {
                (**self).delete_runner(id, reason, deleted_at).await
            }
            async fn acquire_lock(
                &self,
                name: &str,
                owner: &str,
                lease: Duration,
            ) -> Result<LockLease> {
                (**self).acquire_lock(name, owner, lease).await
            }
            async fn lock_holder(&self, name: &str) -> Result<Option<LockLease>> {
                (**self).lock_holder(name).await
            }
            async fn release_lock(&self, name: &str, owner: &str) -> Result<()> {
                (**self).release_lock(name, owner).await
            }
            async fn claim_launch(
                &self,
                job_id: JobId,
                owner: &str,
                lease: Duration,
            ) -> Result<()> {
                (**self).claim_launch(job_id, owner, lease).await
            }
            async fn complete_launch(&self, job_id: JobId, owner: &str) -> Result<()> {
                (**self).complete_launch(job_id, owner).await
            }
            async fn release_launch(&self, job_id: JobId, owner: &str) -> Result<()> {
                (**self).release_launch(job_id, owner).await
            }
            async fn defer_job(&self, ack: &AckHandle, delay: Duration) -> Result<()> {
                (**self).defer_job(ack, delay).await
            }
            async fn set_runner_github_id(
                &self,
                id: RunnerId,
                github_runner_id: u64,
            ) -> Result<()> {
                (**self).set_runner_github_id(id, github_runner_id).await
            }
            async fn dead_letter_job(&self, ack: &AckHandle, reason: &str) -> Result<()> {
                (**self).dead_letter_job(ack, reason).await
            }
            async fn list_dead_letters(&self) -> Result<Vec<DeadLetter>> {
                (**self).list_dead_letters().await
            }
            async fn acquire_slot(
                &self,
                pool: &str,
                capacity: u32,
                holder: &str,
                lease: Duration,
            ) -> Result<()> {
                (**self).acquire_slot(pool, capacity, holder, lease).await
            }
            async fn release_slot(&self, pool: &str, holder: &str) -> Result<()> {
                (**self).release_slot(pool, holder).await
            }
            async fn count_slots(&self, pool: &str) -> Result<u32> {
                (**self).count_slots(pool).await
            }
        }
    };
}

forward_datastore!(Arc);
forward_datastore!(Box);
