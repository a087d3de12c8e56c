"""The one boundary to AWS, and facts about what AWS accepts.

:mod:`deployfw.aws.clients` holds the boto3 clients and the single retry policy every AWS
call of every backend, the state store, the image pusher and the buildspec secret resolver
goes through. Importing this package imports nothing heavy: boto3 is loaded only when a
client module is.
"""
