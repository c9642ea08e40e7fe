"""Statistics reports (issue 5), computed in SQL inside the tenant's schema."""
