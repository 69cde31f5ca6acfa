"""Field ownership machinery behind :mod:`skube.api.apply`.

* :mod:`.typeinfo` — schemas compiled to merge types (map/list/scalar, list keys);
* :mod:`.fieldset` — FieldsV1 tries and their set algebra;
* :mod:`.walk`     — typed walks: field sets, compare, merge, prune;
* :mod:`.managed`  — ``metadata.managedFields`` entries: identity, capping, encoding.
"""
