"""The AWS CDK app's infrastructure: one construct per capability, composed by GenesysEventsStack."""
