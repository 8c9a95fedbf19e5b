//! Prompt cancellation for any plan. DataFusion yields to the scheduler at its leaves, but an operator
//! that produces many batches from data it already holds (a cross join, a recursive CTE) can keep its
//! consumer busy without ever reaching a leaf, so neither a timeout nor aborting the task stops it.
//! `make_cancellable` puts a thin `CancellableExec` above every operator: each batch passing through
//! checks the query's `CancelToken` (deadline or explicit cancel) and ends the stream with an error.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties,
    ReplaceChildrenOptions,
};
use futures::StreamExt;

/// Shared by every operator of one query.
#[derive(Debug)]
pub struct CancelToken {
    deadline: Instant,
    cancelled: AtomicBool,
}

impl CancelToken {
    pub fn new(deadline: Instant) -> Arc<Self> {
        Arc::new(CancelToken {
            deadline,
            cancelled: AtomicBool::new(false),
        })
    }

    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    fn is_done(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed) || Instant::now() >= self.deadline
    }
}

#[derive(Debug)]
struct CancellableExec {
    input: Arc<dyn ExecutionPlan>,
    token: Arc<CancelToken>,
}

impl DisplayAs for CancellableExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "CancellableExec")
    }
}

impl ExecutionPlan for CancellableExec {
    fn name(&self) -> &'static str {
        "CancellableExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return Err(DataFusionError::Internal(
                "CancellableExec has one child".into(),
            ));
        }
        Ok(Arc::new(CancellableExec {
            input: children.swap_remove(0),
            token: self.token.clone(),
        }))
    }

    #[allow(deprecated)]
    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let token = self.token.clone();
        let input = self.input.execute(partition, context)?;
        let schema = input.schema();
        let checked = input.map(move |item| {
            if token.is_done() {
                Err(DataFusionError::Execution("query cancelled".into()))
            } else {
                item
            }
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, checked)))
    }
}

/// Wraps every operator of `plan` so that the query stops within one batch once `token` says so.
pub fn make_cancellable(
    plan: Arc<dyn ExecutionPlan>,
    token: &Arc<CancelToken>,
) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        let wrapped: Arc<dyn ExecutionPlan> = Arc::new(CancellableExec {
            input: node,
            token: token.clone(),
        });
        Ok(Transformed::yes(wrapped))
    })
    .map(|t| t.data)
}
