"""Shanghai Jinshan district's local ODR rules (seeds/001): its deadline policy and its e-commerce
A/B/C classification, each a plugin of its own entry point."""
