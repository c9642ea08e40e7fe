"""ODR units (enterprises, Art. 6-9, 15, 22, 23, 25): application, review, liaisons, status, public directory."""
