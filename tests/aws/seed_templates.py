"""The seed write-up's own appspec.yml and taskdef.json (shared/seed/ecs-cicd-pipeline.ko.md), verbatim.

Kept as data so the render tests prove deployfw catches exactly the mistakes that
pipeline met at deploy time: the appspec names container ``test-api-server`` while
the task definition's container is ``aws-cicd-test-api``, and the container's health
check requests ``/api/v1/health-check`` while the target groups probe ``/health-check``.
"""

from __future__ import annotations

SEED_APPSPEC = """\
version: 0.0
Resources:
  - TargetService:
      Type: AWS::ECS::Service
      Properties:
        TaskDefinition: "arn:aws:ecs:ap-northeast-2:65xxxxxxxxxx:task-definition/test-api-td-prod:1"
        LoadBalancerInfo:
          ContainerName: "test-api-server"
          ContainerPort: 8080
        PlatformVersion: "1.4.0"
        NetworkConfiguration:
          AwsvpcConfiguration:
            Subnets: ["subnet-0xxxxxxxxxx", "subnet-0xxxxxxxxxx"]
            SecurityGroups: ["sg-0xxxxxxxxxx"]
            AssignPublicIp: "DISABLED"
"""

SEED_TASKDEF = """\
{
  "family": "test-api-td-prod",
  "containerDefinitions": [
    {
      "name": "aws-cicd-test-api",
      "image": "6xxxxxxxxxxxx.dkr.ecr.ap-northeast-2.amazonaws.com/aws-cicd-test:latest",
      "cpu": 256,
      "memory": 512,
      "memoryReservation": 512,
      "portMappings": [
        {
          "containerPort": 8080,
          "hostPort": 8080,
          "protocol": "tcp"
        }
      ],
      "essential": true,
      "environment": [
        {
          "name": "TZ",
          "value": "Asia/Seoul"
        },
        {
          "name": "SPRING_PROFILES_ACTIVE",
          "value": "production"
        }
      ],
      "mountPoints": [
        {
          "sourceVolume": "test-shared-volume",
          "containerPath": "/data/",
          "readOnly": false
        }
      ],
      "volumesFrom": [],
      "linuxParameters": {
        "capabilities": {
          "add": [],
          "drop": []
        }
      },
      "privileged": false,
      "readonlyRootFilesystem": false,
      "pseudoTerminal": false,
      "dockerLabels": {
        "env": "prod",
        "Name": "test-api-server"
      },
      "healthCheck": {
        "command": [
          "CMD-SHELL",
          "curl --location --request GET 'http://127.0.0.1:8080/api/v1/health-check' || exit 1"
        ],
        "interval": 10,
        "timeout": 10,
        "retries": 10
      },
      "systemControls": []
    }
  ],
  "taskRoleArn": "arn:aws:iam::6xxxxxxxxxxxx:role/ecs-task-role",
  "executionRoleArn": "arn:aws:iam::6xxxxxxxxxxxx:role/ecs-task-exc-role",
  "networkMode": "awsvpc",
  "volumes": [
    {
      "name": "test-shared-volume",
      "host": {}
    }
  ],
  "requiresCompatibilities": [
    "FARGATE"
  ],
  "cpu": "256",
  "memory": "512",
  "ephemeralStorage": {
    "sizeInGiB": 21
  },
  "runtimePlatform": {
    "operatingSystemFamily": "LINUX"
  }
}
"""
