"""Classification schemes for ODR units that are not tied to one district: enterprise size after the
national statistical standard (:mod:`odr_classification_schemes.enterprise_size`, entry point
``odr_enterprise_size``)."""
