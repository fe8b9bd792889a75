//! A validated invocation and how its method runs: authorization by policy, the call polled with
//! its cancellation (cancellation wins), a panic turned into an internal error.

use super::*;

/// A validated invocation, ready to run.
pub(super) struct Call {
    pub(super) invocation_id: Option<ByteString>,
    pub(super) target: ByteString,
    /// Fires on CancelInvocation, or when the connection's invocations stop.
    pub(super) cancellation: Arc<InvocationCancellation>,
    pub(super) method: BoundMethod,
    /// The trace context the client sent (its span is the invocation span's parent).
    pub(super) remote: RemoteParent,
}

/// Which method to run, with what.
pub(super) struct BoundMethod {
    pub(super) index: usize,
    pub(super) arguments: Arguments,
    pub(super) uploads: Vec<RawUpload>,
}

impl BoundMethod {
    /// Runs the method until it returns (a panic becomes an internal error) or `cancellation`
    /// fires (`None`: a cancelled invocation gets no reply). The method starts even if
    /// `cancellation` already fired, and sees it: a streaming method starts before the next
    /// message is read, as in ASP.NET Core, so a CancelInvocation right behind its
    /// StreamInvocation cancels it rather than skipping it.
    pub(super) async fn run(
        self,
        shared: &Shared,
        cancellation: &Arc<InvocationCancellation>,
        trace_parent: Option<hub_core::trace::TraceParent>,
    ) -> Option<Result<MethodOutput, CallError>> {
        // Checked before each call, as ASP.NET Core does: a policy may depend on more than the
        // principal.
        let authorization = shared
            .env
            .hub
            .methods()
            .get(self.index)
            .map(|method| &method.authorization);
        if let Some(authorization) = authorization.filter(|a| !a.is_open()) {
            let connection = &shared.connection;
            let decision = shared
                .env
                .policies
                .decide(
                    authorization,
                    &connection.identity.principal(),
                    &connection.request,
                )
                .await;
            if decision != Decision::Allowed {
                return Some(Err(CallError::Unauthorized));
            }
        }
        let call = self.call(shared, cancellation, trace_parent);
        // Cancellation wins: a method that stops because it saw the cancellation must not get
        // its (error) result sent for an invocation the client cancelled.
        until_cancelled(std::pin::pin!(guarded(call)), cancellation).await
    }

    /// Calls the method with its context (the caller polls the call): no authorization check.
    pub(super) fn call(
        self,
        shared: &Shared,
        cancellation: &Arc<InvocationCancellation>,
        trace_parent: Option<hub_core::trace::TraceParent>,
    ) -> hub_core::hub::BoxFuture<Result<MethodOutput, CallError>> {
        let context = Context::new(
            shared.connection.clone(),
            shared.hub_context.clone(),
            cancellation.clone(),
        )
        .with_trace_parent(trace_parent);
        shared
            .env
            .hub
            .call(self.index, context, self.arguments, self.uploads)
    }
}
