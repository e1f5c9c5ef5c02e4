"""Domain package shared by the dispatcher, processor and error-logger Lambdas.

The core (events, dedup, outcomes, errors) has no AWS imports; adapters
(Step Functions, SQS, Secrets Manager, Genesys HTTP) sit beside it.
"""
