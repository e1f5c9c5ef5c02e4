"""Write-back plugins (cdk.json ``writeBack.plugin: "module:function"``): modules here ship in the Lambda asset.

A plugin is a function ``(WriteBackEvent) -> WriteBackRequest | None`` (genesys_pipeline/write_back.py).
"""
