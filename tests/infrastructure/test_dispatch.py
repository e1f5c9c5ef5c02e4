"""Dispatcher: the SQS event source and the DispatcherSettings environment."""

from __future__ import annotations


def test_event_source_batches_with_partial_failures_and_a_concurrency_cap(shipped):
    main_id, _ = shipped.one("AWS::SQS::Queue", "MainQueue")
    d = shipped.config.dispatcher
    shipped.template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": {"Fn::GetAtt": [main_id, "Arn"]},
            "BatchSize": d.batch_size,
            "MaximumBatchingWindowInSeconds": d.max_batching_window_seconds,
            "ScalingConfig": {"MaximumConcurrency": d.max_concurrency},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
        },
    )
    assert d.max_concurrency >= 2


def test_dispatcher_environment(shipped):
    fn = shipped.function("Dispatcher")
    sm_id, _ = shipped.one("AWS::StepFunctions::StateMachine")
    dlq_id, _ = shipped.one("AWS::SQS::Queue", "QueuesDeadLetterQueue")
    main_id, _ = shipped.one("AWS::SQS::Queue", "QueuesMainQueue")
    budget_id, _ = shipped.one("AWS::DynamoDB::Table", "RequestBudget")
    c = shipped.config
    assert fn["Handler"] == "dispatcher.handler.lambda_handler"
    assert fn["Environment"]["Variables"] == {
        "POWERTOOLS_SERVICE_NAME": "genesys-event-pipeline",
        "POWERTOOLS_METRICS_NAMESPACE": "GenesysEventPipeline",
        "LOG_LEVEL": c.log_level,
        "ENVIRONMENT": c.name,
        "STATE_MACHINE_ARN": {"Ref": sm_id},
        "DEAD_LETTER_QUEUE_URL": {"Ref": dlq_id},
        "GENESYS_ORG_ID": c.genesys_org_id,
        "ALLOWED_TOPICS": ",".join(c.topics),
        "ALLOWED_QUEUE_IDS": ",".join(c.queue_ids),
        "MAX_EVENT_AGE_SECONDS": str(c.max_event_age_seconds),
        "START_EXECUTION_CONCURRENCY": str(c.dispatcher.start_execution_concurrency),
        # Admission against the request budget; deferred events go back to the main queue.
        "REQUEST_BUDGET_TABLE": {"Ref": budget_id},
        "REQUEST_BUDGET_KEY": "genesys",
        "REQUEST_BUDGET_RATE": f"{c.genesys_rate_limit.requests_per_second:g}",
        "REQUEST_BUDGET_BURST": str(c.genesys_rate_limit.burst),
        "REQUEST_BUDGET_PAUSE_CACHE_SECONDS": "1",
        "REQUEST_BUDGET_WINDOW_SECONDS": "60",
        "REQUEST_BUDGET_SEND_SPREAD_SECONDS": str(c.dispatcher.max_batching_window_seconds + 2),
        "MAIN_QUEUE_URL": {"Ref": main_id},
        "GENESYS_REQUESTS_PER_EVENT": str(c.genesys_requests_per_event),
    }
