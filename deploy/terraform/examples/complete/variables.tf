variable "region" {
  description = "AWS region of the EKS cluster (the bucket is created there too)."
  type        = string
}

variable "cluster_name" {
  description = "Name of the existing EKS cluster whose LLM calls Lumen observes."
  type        = string
}

variable "backend_image" {
  description = "The lumen backend image, e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/lumen:0.1.0."
  type        = string
}

variable "sensor_image" {
  description = "The lumen-sensor image, e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/lumen-sensor:0.1.0."
  type        = string
}

variable "analyst_principal_arns" {
  description = "IAM roles of the people who query spans with Athena or notebooks."
  type        = list(string)
  default     = []
}

variable "retention_days" {
  description = "Days of spans to keep."
  type        = number
  default     = 90
}
