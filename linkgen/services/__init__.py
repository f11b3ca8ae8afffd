"""Application services: orchestration between the domain, storage and outside libraries."""
