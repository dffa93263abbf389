//! `Stadium` for `Arc<T>` and `Box<T>`.

use std::sync::Arc;

use async_trait::async_trait;

use super::{AddInstanceRequest, Instance, ListedInstance, Result, Stadium};

macro_rules! forward_stadium {
    ($wrapper:ident) => {
        #[deny(clippy::missing_trait_methods)]
        #[async_trait]
        impl<T: Stadium + ?Sized> Stadium for $wrapper<T> {
            async fn add_instance(&self, request: &AddInstanceRequest) -> Result<Instance> {
                (**self).add_instance(request).await
            }
            async fn delete_instance(&self, cloud_id: &str, labels: &[String]) -> Result<()> {
                (**self).delete_instance(cloud_id, labels).await
            }
            async fn list_instances(&self) -> Result<Vec<ListedInstance>> {
                (**self).list_instances().await
            }
        }
    };
}

forward_stadium!(Arc);
forward_stadium!(Box);
