"""skube: serverless Kubernetes."""
__version__ = "0.1.0"
