"""The SQLite statements of `verifier scan`, compiled from `scan_tables` by SQLAlchemy.

Generated: `tests/store/test_sqlite_recorder.py` fails when this differs from what
SQLAlchemy compiles from the tables today, and VERIFIER_UPDATE_GOLDEN=1 rewrites it (then
run `ruff format`). Do not edit by hand.
"""

# ruff: noqa: E501  (statements as SQLAlchemy compiles them, one line each)

#: The schema revision a database is at (`Store.open` asks the same).
SCHEMA_REVISION = "SELECT version_num FROM alembic_version"
#: A row when a ban is in force (`scan_tables.BAN_IN_FORCE`).
BAN_IN_FORCE = "SELECT bans.id \nFROM bans \nWHERE bans.action = 'ban' AND NOT (EXISTS (SELECT * \nFROM bans AS lift \nWHERE lift.lifts = bans.id))\n LIMIT 1 OFFSET 0"
#: How many bans and lifts were ever recorded (`scan_tables.BAN_GENERATION`).
BAN_GENERATION = "SELECT count(*) AS count_1 \nFROM bans"
#: The store's lineage key (`scan_tables.LINEAGE_KEY`).
LINEAGE_KEY = "SELECT lineage_keys.secret \nFROM lineage_keys \nWHERE lineage_keys.id = 1"
#: Hub scans that recorded some of these files (`scan_tables.IDENTICAL_FILES`): the
#: recorder writes one `?` per digest where SQLAlchemy's expanding parameter is marked.
IDENTICAL_FILES = "SELECT scans.source, scan_files.sha256 \nFROM scan_files JOIN scans ON scans.id = scan_files.scan_id \nWHERE scan_files.sha256 IN (__[POSTCOMPILE_sha256s]) AND scan_files.complete IS 1 AND scans.source_type = 'huggingface'"
#: Recorded fingerprints to compare a new one with (`scan_tables.LINEAGE_CANDIDATES`),
#: bound with the hidden size and the fingerprint version.
LINEAGE_CANDIDATES = 'SELECT weight_fingerprints.scan_id, weight_fingerprints.repo_id, weight_fingerprints."commit", weight_fingerprints.publisher, weight_fingerprints.scan_id IN (SELECT lineage_bases.scan_id \nFROM lineage_bases) OR weight_fingerprints."commit" IS NOT NULL AND (lower(weight_fingerprints.repo_id), weight_fingerprints."commit") IN (SELECT lower(base_prints.repo_id) AS lower_1, base_prints."commit" \nFROM lineage_bases JOIN weight_fingerprints AS base_prints ON lineage_bases.scan_id = base_prints.scan_id) AS registered \nFROM weight_fingerprints JOIN scans ON scans.id = weight_fingerprints.scan_id \nWHERE weight_fingerprints.hidden_size = ? AND weight_fingerprints.version = ? AND scans.status = \'complete\' ORDER BY scans.started_at DESC, scans.id'
#: Models of that width fingerprinted by an older version (`scan_tables.LINEAGE_OLDER`),
#: bound as above.
LINEAGE_OLDER = 'SELECT weight_fingerprints.repo_id, weight_fingerprints."commit", weight_fingerprints.version, weight_fingerprints.scan_id IN (SELECT lineage_bases.scan_id \nFROM lineage_bases) OR weight_fingerprints."commit" IS NOT NULL AND (lower(weight_fingerprints.repo_id), weight_fingerprints."commit") IN (SELECT lower(base_prints.repo_id) AS lower_1, base_prints."commit" \nFROM lineage_bases JOIN weight_fingerprints AS base_prints ON lineage_bases.scan_id = base_prints.scan_id) AS registered \nFROM weight_fingerprints JOIN scans ON scans.id = weight_fingerprints.scan_id \nWHERE weight_fingerprints.hidden_size = ? AND weight_fingerprints.version < ? AND scans.status = \'complete\''
#: The chosen fingerprints (`scan_tables.LINEAGE_BLOBS`): one `?` per scan id, as above.
LINEAGE_BLOBS = "SELECT weight_fingerprints.scan_id, weight_fingerprints.repo_id, weight_fingerprints.fingerprint \nFROM weight_fingerprints \nWHERE weight_fingerprints.scan_id IN (__[POSTCOMPILE_scan_ids])"
#: How SQLAlchemy's SQLite dialect stores a timestamp (in UTC, without its offset).
DATETIME_FORMAT = (
    "%(year)04d-%(month)02d-%(day)02d %(hour)02d:%(minute)02d:%(second)02d.%(microsecond)06d"
)
#: Per table a scan writes: the INSERT statement, its columns in order, and how each
#: column is bound (`json`, `timestamp` or `plain`).
INSERTS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "scans": (
        "INSERT INTO scans (id, target, source_type, source, started_at, finished_at, tool_version, status, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            "id",
            "target",
            "source_type",
            "source",
            "started_at",
            "finished_at",
            "tool_version",
            "status",
            "error",
        ),
        ("plain", "plain", "plain", "json", "timestamp", "timestamp", "plain", "plain", "plain"),
    ),
    "scan_files": (
        "INSERT INTO scan_files (scan_id, path, size, sha256, git_sha1, format, complete) VALUES (?, ?, ?, ?, ?, ?, ?)",
        ("scan_id", "path", "size", "sha256", "git_sha1", "format", "complete"),
        ("plain", "plain", "plain", "plain", "plain", "plain", "plain"),
    ),
    "findings": (
        "INSERT INTO findings (scan_id, file_path, code, severity, message, member, byte_offset, evidence) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            "scan_id",
            "file_path",
            "code",
            "severity",
            "message",
            "member",
            "byte_offset",
            "evidence",
        ),
        ("plain", "plain", "plain", "plain", "plain", "plain", "plain", "plain"),
    ),
    "decisions": (
        "INSERT INTO decisions (scan_id, decided_at, decision, policy_name, policy_digest, mode, reasons, environment, waivers) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            "scan_id",
            "decided_at",
            "decision",
            "policy_name",
            "policy_digest",
            "mode",
            "reasons",
            "environment",
            "waivers",
        ),
        ("plain", "timestamp", "plain", "plain", "plain", "plain", "json", "plain", "json"),
    ),
    "signatures": (
        "INSERT INTO signatures (scan_id, status, method, signer, issuer, key_fingerprint, certificate_subject, key_usage, path, bundle_sha256, predicate_type, digest_algorithm, reason, diff, outside) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            "scan_id",
            "status",
            "method",
            "signer",
            "issuer",
            "key_fingerprint",
            "certificate_subject",
            "key_usage",
            "path",
            "bundle_sha256",
            "predicate_type",
            "digest_algorithm",
            "reason",
            "diff",
            "outside",
        ),
        (
            "plain",
            "plain",
            "plain",
            "plain",
            "plain",
            "plain",
            "plain",
            "json",
            "plain",
            "plain",
            "plain",
            "plain",
            "plain",
            "json",
            "json",
        ),
    ),
    "scan_facts": (
        "INSERT INTO scan_facts (scan_id, subject, document) VALUES (?, ?, ?)",
        ("scan_id", "subject", "document"),
        ("plain", "plain", "json"),
    ),
    "model_details": (
        "INSERT INTO model_details (scan_id, document) VALUES (?, ?)",
        ("scan_id", "document"),
        ("plain", "json"),
    ),
    "source_revisions": (
        'INSERT INTO source_revisions (scan_id, source_type, repo_id, namespace, "commit", revision_requested, endpoint, created_at, last_modified, gated, private, license, license_name, license_link, library_name, pipeline_tag, base_model_relation, hub_security_status, metadata_lists) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
        (
            "scan_id",
            "source_type",
            "repo_id",
            "namespace",
            "commit",
            "revision_requested",
            "endpoint",
            "created_at",
            "last_modified",
            "gated",
            "private",
            "license",
            "license_name",
            "license_link",
            "library_name",
            "pipeline_tag",
            "base_model_relation",
            "hub_security_status",
            "metadata_lists",
        ),
        (
            "plain",
            "plain",
            "plain",
            "plain",
            "plain",
            "plain",
            "plain",
            "plain",
            "plain",
            "plain",
            "plain",
            "plain",
            "plain",
            "plain",
            "plain",
            "plain",
            "plain",
            "plain",
            "json",
        ),
    ),
    "lineage_edges": (
        "INSERT INTO lineage_edges (scan_id, child, child_commit, parent, parent_commit, relation, depth, error, parent_license) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            "scan_id",
            "child",
            "child_commit",
            "parent",
            "parent_commit",
            "relation",
            "depth",
            "error",
            "parent_license",
        ),
        ("plain", "plain", "plain", "plain", "plain", "plain", "plain", "plain", "plain"),
    ),
    "declared_files": (
        "INSERT INTO declared_files (scan_id, path, size, sha256, git_sha1, lfs) VALUES (?, ?, ?, ?, ?, ?)",
        ("scan_id", "path", "size", "sha256", "git_sha1", "lfs"),
        ("plain", "plain", "plain", "plain", "plain", "plain"),
    ),
    "weight_fingerprints": (
        'INSERT INTO weight_fingerprints (scan_id, repo_id, "commit", publisher, hidden_size, version, fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?)',
        ("scan_id", "repo_id", "commit", "publisher", "hidden_size", "version", "fingerprint"),
        ("plain", "plain", "plain", "plain", "plain", "plain", "plain"),
    ),
}
