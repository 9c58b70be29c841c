BEGIN TRANSACTION;
CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL, 
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
INSERT INTO "alembic_version" VALUES('0007');
CREATE TABLE approvals (
	id INTEGER NOT NULL, 
	scan_id VARCHAR(32) NOT NULL, 
	approved_at DATETIME NOT NULL, 
	key_fingerprint VARCHAR(64) NOT NULL, 
	bundle_sha256 VARCHAR(64) NOT NULL, 
	output TEXT NOT NULL, 
	files INTEGER NOT NULL, 
	CONSTRAINT pk_approvals PRIMARY KEY (id), 
	CONSTRAINT fk_approvals_scan_id_scans FOREIGN KEY(scan_id) REFERENCES scans (id)
);
INSERT INTO "approvals" VALUES(1,'40bfaa04ac9a459c936c325c17b88126','2026-12-04 13:52:52.792099','7d60a10653ae9f801c9d327ca85d36a3873123f95e5417626136273b8b1bfa05','8864e3cfea8e51f33352210ac462edf296542c08776f99aa44627c2798cbf498','/tmp/tmp1j4hpxy1/a.sig',4);
CREATE TABLE decisions (
	id INTEGER NOT NULL, 
	scan_id VARCHAR(32) NOT NULL, 
	decided_at DATETIME NOT NULL, 
	decision VARCHAR(16) NOT NULL, 
	policy_name TEXT NOT NULL, 
	policy_digest TEXT NOT NULL, 
	mode VARCHAR(32) NOT NULL, 
	reasons JSON NOT NULL, environment VARCHAR(64), waivers JSON, 
	CONSTRAINT pk_decisions PRIMARY KEY (id), 
	CONSTRAINT fk_decisions_scan_id_scans FOREIGN KEY(scan_id) REFERENCES scans (id)
);
INSERT INTO "decisions" VALUES(1,'7aa3c15d057440b7b4e2f15b0b7696d7','2026-12-04 13:52:50.428834','allow','default','c3478e3e78b6c595ad93b9b1f887f2529c954336658e8f48884bb62704eabab0','enforce','[]',NULL,'[]');
INSERT INTO "decisions" VALUES(2,'e7a0f2afa5f6422da4637d79b2d4e065','2026-12-04 13:52:50.709341','deny','default','c3478e3e78b6c595ad93b9b1f887f2529c954336658e8f48884bb62704eabab0','enforce','[{"rule_id": "no-high-or-critical-findings", "effect": "deny", "severity": "high", "message": "Findings of high or critical severity block the model.", "evidence": ["model.pkl: PICKLE-DANGEROUS-GLOBAL (critical)"], "waived_by": null}, {"rule_id": "pickle-formats-warn", "effect": "warn", "severity": "medium", "message": "Pickle-based files import only allowlisted callables; prefer safetensors.", "evidence": ["model.pkl: pickle"], "waived_by": null}]',NULL,'[]');
INSERT INTO "decisions" VALUES(3,'99fd6006102847afae83474a4f9cfdf3','2026-12-04 13:52:50.936290','deny','default','c3478e3e78b6c595ad93b9b1f887f2529c954336658e8f48884bb62704eabab0','enforce','[{"rule_id": "no-high-or-critical-findings", "effect": "deny", "severity": "high", "message": "Findings of high or critical severity block the model.", "evidence": ["model.pkl: PICKLE-DANGEROUS-GLOBAL (critical)"], "waived_by": null}, {"rule_id": "pickle-formats-warn", "effect": "warn", "severity": "medium", "message": "Pickle-based files import only allowlisted callables; prefer safetensors.", "evidence": ["model.pkl: pickle"], "waived_by": null}]',NULL,'[]');
INSERT INTO "decisions" VALUES(4,'d1f95fed0cd94afaa0ec8d0c60272ffc','2026-12-04 13:52:51.114781','allow','default','c3478e3e78b6c595ad93b9b1f887f2529c954336658e8f48884bb62704eabab0','enforce','[]',NULL,'[]');
INSERT INTO "decisions" VALUES(5,'40bfaa04ac9a459c936c325c17b88126','2026-12-04 13:52:52.296892','allow','default','c3478e3e78b6c595ad93b9b1f887f2529c954336658e8f48884bb62704eabab0','enforce','[]',NULL,'[]');
INSERT INTO "decisions" VALUES(6,'ffffffffffffffffffffffffffffffff','2026-12-04 13:52:52.379956','deny','(none)','','enforce','[]',NULL,'[]');
INSERT INTO "decisions" VALUES(7,'e7a0f2afa5f6422da4637d79b2d4e065','2026-12-04 13:52:52.582443','allow','default','d93f42220f41748a7d02d6deb3a0ef42b6b5338629a7e728e86d83cc369ff424','enforce','[{"rule_id": "no-high-or-critical-findings", "effect": "deny", "severity": "high", "message": "Findings of high or critical severity block the model.", "evidence": ["model.pkl: PICKLE-DANGEROUS-GLOBAL (critical)"], "waived_by": "reviewed-pickle"}, {"rule_id": "pickle-formats-warn", "effect": "warn", "severity": "medium", "message": "Pickle-based files import only allowlisted callables; prefer safetensors.", "evidence": ["model.pkl: pickle"], "waived_by": null}]',NULL,'[{"id": "reviewed-pickle", "rule": "no-high-or-critical-findings", "subject": "sha256:177311aefddcf47be753366f4fef3a3311f67f4f9af58d2ef72f66ea457f5131", "status": "applied", "expires": "2099-01-01", "approved_by": "security@example.com", "ticket": "SEC-1"}]');
CREATE TABLE declared_files (
	id INTEGER NOT NULL, 
	scan_id VARCHAR(32) NOT NULL, 
	path TEXT NOT NULL, 
	size BIGINT NOT NULL, 
	sha256 VARCHAR(64), 
	git_sha1 VARCHAR(40), 
	lfs BOOLEAN NOT NULL, 
	CONSTRAINT pk_declared_files PRIMARY KEY (id), 
	CONSTRAINT fk_declared_files_scan_id_scans FOREIGN KEY(scan_id) REFERENCES scans (id), 
	CONSTRAINT uq_declared_files_scan_id_path UNIQUE (scan_id, path)
);
INSERT INTO "declared_files" VALUES(1,'40bfaa04ac9a459c936c325c17b88126','README.md',35,NULL,'816faa1588aacc7761a5994c0c96104df0030585',0);
INSERT INTO "declared_files" VALUES(2,'40bfaa04ac9a459c936c325c17b88126','config.json',40,NULL,'5628f006f3288e3acef05466e7d1d001d93348f3',0);
INSERT INTO "declared_files" VALUES(3,'40bfaa04ac9a459c936c325c17b88126','model.safetensors',136,'a23369b7542531dda2bccafaed372a5ddf505b0e343915432190f5e58c964526','23c6c2549057fe5ca123e2ad597ece9144fc5e7f',1);
INSERT INTO "declared_files" VALUES(4,'40bfaa04ac9a459c936c325c17b88126','sub/tokenizer.json',18,NULL,'fdef94443aef6c464d438c4654540cb4245f8f1e',0);
CREATE TABLE findings (
	id INTEGER NOT NULL, 
	scan_id VARCHAR(32) NOT NULL, 
	file_path TEXT, 
	code VARCHAR(128) NOT NULL, 
	severity VARCHAR(16) NOT NULL, 
	message TEXT NOT NULL, 
	member TEXT, 
	byte_offset BIGINT, 
	evidence TEXT, 
	CONSTRAINT pk_findings PRIMARY KEY (id), 
	CONSTRAINT fk_findings_scan_id_scans FOREIGN KEY(scan_id) REFERENCES scans (id)
);
INSERT INTO "findings" VALUES(1,'e7a0f2afa5f6422da4637d79b2d4e065','model.pkl','PICKLE-DANGEROUS-GLOBAL','critical','pickle imports os.system, which can run code or reach the system when loaded',NULL,2,'os.system');
INSERT INTO "findings" VALUES(2,'99fd6006102847afae83474a4f9cfdf3','model.pkl','PICKLE-DANGEROUS-GLOBAL','critical','pickle imports os.system, which can run code or reach the system when loaded',NULL,2,'os.system');
INSERT INTO "findings" VALUES(3,'d1f95fed0cd94afaa0ec8d0c60272ffc','model.sig','SIGNATURE-OUTSIDE','info','not covered by the signature (ignored by it); still scanned',NULL,NULL,NULL);
INSERT INTO "findings" VALUES(4,'d1f95fed0cd94afaa0ec8d0c60272ffc','model.sig','SIGNATURE-VERIFIED','info','signature verified; all 4 signed files match; signer sha256:5f771d5d3b85c9c337e1141364d6592c06579df38e7525335fb893fce5b302a0 (key)',NULL,NULL,NULL);
INSERT INTO "findings" VALUES(5,'d1f95fed0cd94afaa0ec8d0c60272ffc','weights.bin','FORMAT-UNKNOWN','low','unknown binary format; no known loader executes it, but it was not analysed',NULL,0,'first bytes: 000102030405060708090a0b0c0d0e0f');
INSERT INTO "findings" VALUES(6,'ffffffffffffffffffffffffffffffff',NULL,'SCAN-FAILED','high','OSError: disk went away',NULL,NULL,NULL);
CREATE TABLE lineage_edges (
	id INTEGER NOT NULL, 
	scan_id VARCHAR(32) NOT NULL, 
	child TEXT NOT NULL, 
	child_commit VARCHAR(64) NOT NULL, 
	parent TEXT NOT NULL, 
	parent_commit VARCHAR(64), 
	relation VARCHAR(32) NOT NULL, 
	depth INTEGER NOT NULL, 
	error TEXT, 
	parent_license TEXT, 
	CONSTRAINT pk_lineage_edges PRIMARY KEY (id), 
	CONSTRAINT fk_lineage_edges_scan_id_scans FOREIGN KEY(scan_id) REFERENCES scans (id)
);
INSERT INTO "lineage_edges" VALUES(1,'40bfaa04ac9a459c936c325c17b88126','Qwen/tiny','1fbab6a8a84be6b378369b7ae020ae1631804519','Qwen/base','19fcf90cfcad7d7720fd120ab19d5578c156a317','finetune',1,NULL,'mit');
CREATE TABLE model_details (
	scan_id VARCHAR(32) NOT NULL, 
	document JSON NOT NULL, 
	CONSTRAINT pk_model_details PRIMARY KEY (scan_id), 
	CONSTRAINT fk_model_details_scan_id_scans FOREIGN KEY(scan_id) REFERENCES scans (id)
);
INSERT INTO "model_details" VALUES('7aa3c15d057440b7b4e2f15b0b7696d7','{"card": {"metadata": {"license": "mit", "base_model": "acme/base", "base_model_relation": "finetune", "datasets": ["acme/corpus"]}, "headings": ["local", "Intended uses"], "truncated": false}, "config": {"architectures": ["TinyLM"], "model_type": "tiny"}, "safetensors": {"model.safetensors": {"parameters": 16, "dtypes": ["F32"]}}}');
INSERT INTO "model_details" VALUES('e7a0f2afa5f6422da4637d79b2d4e065','{"config": {}}');
INSERT INTO "model_details" VALUES('99fd6006102847afae83474a4f9cfdf3','{"config": {}}');
INSERT INTO "model_details" VALUES('d1f95fed0cd94afaa0ec8d0c60272ffc','{"config": {"hidden_size": 8}}');
INSERT INTO "model_details" VALUES('40bfaa04ac9a459c936c325c17b88126','{"card": {"metadata": {"license": "apache-2.0"}, "headings": ["tiny"], "truncated": false}, "config": {"model_type": "tiny", "hidden_size": 4}, "safetensors": {"model.safetensors": {"parameters": 16, "dtypes": ["F32"]}}}');
CREATE TABLE scan_facts (
	id INTEGER NOT NULL, 
	scan_id VARCHAR(32) NOT NULL, 
	subject TEXT, 
	document JSON NOT NULL, 
	CONSTRAINT pk_scan_facts PRIMARY KEY (id), 
	CONSTRAINT fk_scan_facts_scan_id_scans FOREIGN KEY(scan_id) REFERENCES scans (id), 
	CONSTRAINT uq_scan_facts_scan_id UNIQUE (scan_id)
);
INSERT INTO "scan_facts" VALUES(1,'7aa3c15d057440b7b4e2f15b0b7696d7',NULL,'{"scan_id": "7aa3c15d057440b7b4e2f15b0b7696d7", "target": "/tmp/tmp1j4hpxy1/local", "status": "complete", "started_at": "2026-12-04T13:52:50.381985+00:00", "finished_at": "2026-12-04T13:52:50.402989+00:00", "tool": {"name": "verifier", "version": "0.1.0"}, "source": {"type": "local", "root": "/tmp/tmp1j4hpxy1/local"}, "provenance": null, "declared_files": null, "summary": {"files": 3, "bytes": 316, "findings": {"info": 0, "low": 0, "medium": 0, "high": 0, "critical": 0}}, "files": [{"path": "README.md", "size": 129, "sha256": "64c2273e071cba9e78291eee4e0cef8a184ee08d88f61fcd80af7625e84f8a80", "git_sha1": null, "format": "text", "complete": true, "findings": []}, {"path": "config.json", "size": 51, "sha256": "39e195853f3058222e3d7b136bb6c81904ba9401c9fb5be773891009a3b585cc", "git_sha1": null, "format": "json", "complete": true, "findings": []}, {"path": "model.safetensors", "size": 136, "sha256": "a23369b7542531dda2bccafaed372a5ddf505b0e343915432190f5e58c964526", "git_sha1": null, "format": "safetensors", "complete": true, "findings": []}], "signature": {"status": "absent", "method": null, "signer": null, "issuer": null, "key_fingerprint": null, "certificate_subject": null, "key_usage": [], "path": null, "bundle_sha256": null, "predicate_type": null, "digest_algorithm": null, "reason": "the model carries no signature", "diff": {"extra": [], "missing": [], "changed": []}, "outside": []}, "findings": [], "details": {"card": {"metadata": {"license": "mit", "base_model": "acme/base", "base_model_relation": "finetune", "datasets": ["acme/corpus"]}, "headings": ["local", "Intended uses"], "truncated": false}, "config": {"architectures": ["TinyLM"], "model_type": "tiny"}, "safetensors": {"model.safetensors": {"parameters": 16, "dtypes": ["F32"]}}}}');
INSERT INTO "scan_facts" VALUES(2,'e7a0f2afa5f6422da4637d79b2d4e065',NULL,'{"scan_id": "e7a0f2afa5f6422da4637d79b2d4e065", "target": "/tmp/tmp1j4hpxy1/waived", "status": "complete", "started_at": "2026-12-04T13:52:50.697542+00:00", "finished_at": "2026-12-04T13:52:50.706635+00:00", "tool": {"name": "verifier", "version": "0.1.0"}, "source": {"type": "local", "root": "/tmp/tmp1j4hpxy1/waived"}, "provenance": null, "declared_files": null, "summary": {"files": 2, "bytes": 75, "findings": {"info": 0, "low": 0, "medium": 0, "high": 0, "critical": 1}}, "files": [{"path": "config.json", "size": 2, "sha256": "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "git_sha1": null, "format": "json", "complete": true, "findings": []}, {"path": "model.pkl", "size": 73, "sha256": "177311aefddcf47be753366f4fef3a3311f67f4f9af58d2ef72f66ea457f5131", "git_sha1": null, "format": "pickle", "complete": true, "findings": [{"code": "PICKLE-DANGEROUS-GLOBAL", "severity": "critical", "file": "model.pkl", "member": null, "offset": 2, "evidence": "os.system", "message": "pickle imports os.system, which can run code or reach the system when loaded"}]}], "signature": {"status": "absent", "method": null, "signer": null, "issuer": null, "key_fingerprint": null, "certificate_subject": null, "key_usage": [], "path": null, "bundle_sha256": null, "predicate_type": null, "digest_algorithm": null, "reason": "the model carries no signature", "diff": {"extra": [], "missing": [], "changed": []}, "outside": []}, "findings": [{"code": "PICKLE-DANGEROUS-GLOBAL", "severity": "critical", "file": "model.pkl", "member": null, "offset": 2, "evidence": "os.system", "message": "pickle imports os.system, which can run code or reach the system when loaded"}], "details": {"config": {}}}');
INSERT INTO "scan_facts" VALUES(3,'99fd6006102847afae83474a4f9cfdf3',NULL,'{"scan_id": "99fd6006102847afae83474a4f9cfdf3", "target": "/tmp/tmp1j4hpxy1/denied", "status": "complete", "started_at": "2026-12-04T13:52:50.923924+00:00", "finished_at": "2026-12-04T13:52:50.934217+00:00", "tool": {"name": "verifier", "version": "0.1.0"}, "source": {"type": "local", "root": "/tmp/tmp1j4hpxy1/denied"}, "provenance": null, "declared_files": null, "summary": {"files": 2, "bytes": 75, "findings": {"info": 0, "low": 0, "medium": 0, "high": 0, "critical": 1}}, "files": [{"path": "config.json", "size": 2, "sha256": "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "git_sha1": null, "format": "json", "complete": true, "findings": []}, {"path": "model.pkl", "size": 73, "sha256": "177311aefddcf47be753366f4fef3a3311f67f4f9af58d2ef72f66ea457f5131", "git_sha1": null, "format": "pickle", "complete": true, "findings": [{"code": "PICKLE-DANGEROUS-GLOBAL", "severity": "critical", "file": "model.pkl", "member": null, "offset": 2, "evidence": "os.system", "message": "pickle imports os.system, which can run code or reach the system when loaded"}]}], "signature": {"status": "absent", "method": null, "signer": null, "issuer": null, "key_fingerprint": null, "certificate_subject": null, "key_usage": [], "path": null, "bundle_sha256": null, "predicate_type": null, "digest_algorithm": null, "reason": "the model carries no signature", "diff": {"extra": [], "missing": [], "changed": []}, "outside": []}, "findings": [{"code": "PICKLE-DANGEROUS-GLOBAL", "severity": "critical", "file": "model.pkl", "member": null, "offset": 2, "evidence": "os.system", "message": "pickle imports os.system, which can run code or reach the system when loaded"}], "details": {"config": {}}}');
INSERT INTO "scan_facts" VALUES(4,'d1f95fed0cd94afaa0ec8d0c60272ffc',NULL,'{"scan_id": "d1f95fed0cd94afaa0ec8d0c60272ffc", "target": "/tmp/tmp1j4hpxy1/signed", "status": "complete", "started_at": "2026-12-04T13:52:51.100386+00:00", "finished_at": "2026-12-04T13:52:51.112303+00:00", "tool": {"name": "verifier", "version": "0.1.0"}, "source": {"type": "local", "root": "/tmp/tmp1j4hpxy1/signed"}, "provenance": null, "declared_files": null, "summary": {"files": 5, "bytes": 12272, "findings": {"info": 2, "low": 1, "medium": 0, "high": 0, "critical": 0}}, "files": [{"path": "config.json", "size": 19, "sha256": "6102b7b977af452ba2973005c4d51e7c9cf9b788557fcf7dab3585b98cda16fe", "git_sha1": null, "format": "json", "complete": true, "findings": []}, {"path": "empty.txt", "size": 0, "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "git_sha1": null, "format": "empty", "complete": true, "findings": []}, {"path": "model.sig", "size": 2007, "sha256": "1abaf52f6ccee9a69d3802088dc17ca1138c915175be37401b124921083ff3e2", "git_sha1": null, "format": "json", "complete": true, "findings": [{"code": "SIGNATURE-OUTSIDE", "severity": "info", "file": "model.sig", "member": null, "offset": null, "evidence": null, "message": "not covered by the signature (ignored by it); still scanned"}, {"code": "SIGNATURE-VERIFIED", "severity": "info", "file": "model.sig", "member": null, "offset": null, "evidence": null, "message": "signature verified; all 4 signed files match; signer sha256:5f771d5d3b85c9c337e1141364d6592c06579df38e7525335fb893fce5b302a0 (key)"}]}, {"path": "sub/notes.txt", "size": 6, "sha256": "444e0fffbd825e9610ff5b199485707a0c895339ae80c15cc8a8aee41b106fda", "git_sha1": null, "format": "text", "complete": true, "findings": []}, {"path": "weights.bin", "size": 10240, "sha256": "e96760a87768717bcebcfd25ddc7d46b4dbc95a4b0014def080c08539f7d90d0", "git_sha1": null, "format": "unknown", "complete": true, "findings": [{"code": "FORMAT-UNKNOWN", "severity": "low", "file": "weights.bin", "member": null, "offset": 0, "evidence": "first bytes: 000102030405060708090a0b0c0d0e0f", "message": "unknown binary format; no known loader executes it, but it was not analysed"}]}], "signature": {"status": "verified", "method": "key", "signer": "sha256:5f771d5d3b85c9c337e1141364d6592c06579df38e7525335fb893fce5b302a0", "issuer": null, "key_fingerprint": "sha256:5f771d5d3b85c9c337e1141364d6592c06579df38e7525335fb893fce5b302a0", "certificate_subject": null, "key_usage": [], "path": "model.sig", "bundle_sha256": "1abaf52f6ccee9a69d3802088dc17ca1138c915175be37401b124921083ff3e2", "predicate_type": "https://model_signing/signature/v1.0", "digest_algorithm": "sha256", "reason": "signature verified; all 4 signed files match", "diff": {"extra": [], "missing": [], "changed": []}, "outside": ["model.sig"]}, "findings": [{"code": "SIGNATURE-OUTSIDE", "severity": "info", "file": "model.sig", "member": null, "offset": null, "evidence": null, "message": "not covered by the signature (ignored by it); still scanned"}, {"code": "SIGNATURE-VERIFIED", "severity": "info", "file": "model.sig", "member": null, "offset": null, "evidence": null, "message": "signature verified; all 4 signed files match; signer sha256:5f771d5d3b85c9c337e1141364d6592c06579df38e7525335fb893fce5b302a0 (key)"}, {"code": "FORMAT-UNKNOWN", "severity": "low", "file": "weights.bin", "member": null, "offset": 0, "evidence": "first bytes: 000102030405060708090a0b0c0d0e0f", "message": "unknown binary format; no known loader executes it, but it was not analysed"}], "details": {"config": {"hidden_size": 8}}}');
INSERT INTO "scan_facts" VALUES(5,'40bfaa04ac9a459c936c325c17b88126','hf://Qwen/tiny@1fbab6a8a84be6b378369b7ae020ae1631804519','{"scan_id": "40bfaa04ac9a459c936c325c17b88126", "target": "hf://Qwen/tiny", "status": "complete", "started_at": "2026-12-04T13:52:52.094300+00:00", "finished_at": "2026-12-04T13:52:52.294688+00:00", "tool": {"name": "verifier", "version": "0.1.0"}, "source": {"type": "huggingface", "repo_id": "Qwen/tiny", "revision_requested": "main", "commit": "1fbab6a8a84be6b378369b7ae020ae1631804519", "endpoint": "http://127.0.0.1:34713"}, "provenance": {"source_type": "huggingface", "purl": "pkg:huggingface/Qwen/tiny@1fbab6a8a84be6b378369b7ae020ae1631804519", "repo_id": "Qwen/tiny", "namespace": "Qwen", "commit": "1fbab6a8a84be6b378369b7ae020ae1631804519", "revision_requested": "main", "endpoint": "http://127.0.0.1:34713", "created_at": "2024-01-02T03:04:05+00:00", "last_modified": "2024-06-07T08:09:10+00:00", "gated": "false", "private": false, "license": "apache-2.0", "license_name": null, "license_link": null, "tags": [], "datasets": ["acme/corpus"], "languages": ["en", "fr"], "library_name": "transformers", "pipeline_tag": "text-generation", "base_models": ["Qwen/base"], "base_model_relation": "finetune", "hub_security_status": "{\"filesWithIssues\": [], \"scansDone\": true}", "hub_scan_status": "clean", "lineage": {"declared": true, "ancestors": [{"repo_id": "Qwen/base", "commit": "19fcf90cfcad7d7720fd120ab19d5578c156a317", "relation": "finetune", "depth": 1, "license": "mit", "child": "Qwen/tiny", "child_commit": "1fbab6a8a84be6b378369b7ae020ae1631804519", "error": null}], "roots": ["Qwen/base"], "truncated": false, "cycle": false}}, "declared_files": [{"path": "README.md", "size": 35, "sha256": null, "git_sha1": "816faa1588aacc7761a5994c0c96104df0030585", "lfs": false}, {"path": "config.json", "size": 40, "sha256": null, "git_sha1": "5628f006f3288e3acef05466e7d1d001d93348f3", "lfs": false}, {"path": "model.safetensors", "size": 136, "sha256": "a23369b7542531dda2bccafaed372a5ddf505b0e343915432190f5e58c964526", "git_sha1": "23c6c2549057fe5ca123e2ad597ece9144fc5e7f", "lfs": true}, {"path": "sub/tokenizer.json", "size": 18, "sha256": null, "git_sha1": "fdef94443aef6c464d438c4654540cb4245f8f1e", "lfs": false}], "summary": {"files": 4, "bytes": 229, "findings": {"info": 0, "low": 0, "medium": 0, "high": 0, "critical": 0}}, "files": [{"path": "README.md", "size": 35, "sha256": "6aaf90937004cc009af24924b6950b160ad83eda00aca9682b4041a964bc36bd", "git_sha1": "816faa1588aacc7761a5994c0c96104df0030585", "format": "text", "complete": true, "findings": []}, {"path": "config.json", "size": 40, "sha256": "4894ee9b65a9ed4030daf5a213896bfa215175a3477cee38d5d4ebcef8df94d8", "git_sha1": "5628f006f3288e3acef05466e7d1d001d93348f3", "format": "json", "complete": true, "findings": []}, {"path": "model.safetensors", "size": 136, "sha256": "a23369b7542531dda2bccafaed372a5ddf505b0e343915432190f5e58c964526", "git_sha1": null, "format": "safetensors", "complete": true, "findings": []}, {"path": "sub/tokenizer.json", "size": 18, "sha256": "4e3043229142b64d998563bc543ce034e0a2251af5d404995e3afcb8ce8850df", "git_sha1": "fdef94443aef6c464d438c4654540cb4245f8f1e", "format": "json", "complete": true, "findings": []}], "signature": {"status": "absent", "method": null, "signer": null, "issuer": null, "key_fingerprint": null, "certificate_subject": null, "key_usage": [], "path": null, "bundle_sha256": null, "predicate_type": null, "digest_algorithm": null, "reason": "the model carries no signature", "diff": {"extra": [], "missing": [], "changed": []}, "outside": []}, "findings": [], "details": {"card": {"metadata": {"license": "apache-2.0"}, "headings": ["tiny"], "truncated": false}, "config": {"model_type": "tiny", "hidden_size": 4}, "safetensors": {"model.safetensors": {"parameters": 16, "dtypes": ["F32"]}}}}');
CREATE TABLE scan_files (
	id INTEGER NOT NULL, 
	scan_id VARCHAR(32) NOT NULL, 
	path TEXT NOT NULL, 
	size BIGINT NOT NULL, 
	sha256 VARCHAR(64), 
	git_sha1 VARCHAR(40), 
	format VARCHAR(32) NOT NULL, 
	complete BOOLEAN NOT NULL, 
	CONSTRAINT pk_scan_files PRIMARY KEY (id), 
	CONSTRAINT fk_scan_files_scan_id_scans FOREIGN KEY(scan_id) REFERENCES scans (id), 
	CONSTRAINT uq_scan_files_scan_id_path UNIQUE (scan_id, path)
);
INSERT INTO "scan_files" VALUES(1,'7aa3c15d057440b7b4e2f15b0b7696d7','README.md',129,'64c2273e071cba9e78291eee4e0cef8a184ee08d88f61fcd80af7625e84f8a80',NULL,'text',1);
INSERT INTO "scan_files" VALUES(2,'7aa3c15d057440b7b4e2f15b0b7696d7','config.json',51,'39e195853f3058222e3d7b136bb6c81904ba9401c9fb5be773891009a3b585cc',NULL,'json',1);
INSERT INTO "scan_files" VALUES(3,'7aa3c15d057440b7b4e2f15b0b7696d7','model.safetensors',136,'a23369b7542531dda2bccafaed372a5ddf505b0e343915432190f5e58c964526',NULL,'safetensors',1);
INSERT INTO "scan_files" VALUES(4,'e7a0f2afa5f6422da4637d79b2d4e065','config.json',2,'44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',NULL,'json',1);
INSERT INTO "scan_files" VALUES(5,'e7a0f2afa5f6422da4637d79b2d4e065','model.pkl',73,'177311aefddcf47be753366f4fef3a3311f67f4f9af58d2ef72f66ea457f5131',NULL,'pickle',1);
INSERT INTO "scan_files" VALUES(6,'99fd6006102847afae83474a4f9cfdf3','config.json',2,'44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',NULL,'json',1);
INSERT INTO "scan_files" VALUES(7,'99fd6006102847afae83474a4f9cfdf3','model.pkl',73,'177311aefddcf47be753366f4fef3a3311f67f4f9af58d2ef72f66ea457f5131',NULL,'pickle',1);
INSERT INTO "scan_files" VALUES(8,'d1f95fed0cd94afaa0ec8d0c60272ffc','config.json',19,'6102b7b977af452ba2973005c4d51e7c9cf9b788557fcf7dab3585b98cda16fe',NULL,'json',1);
INSERT INTO "scan_files" VALUES(9,'d1f95fed0cd94afaa0ec8d0c60272ffc','empty.txt',0,'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',NULL,'empty',1);
INSERT INTO "scan_files" VALUES(10,'d1f95fed0cd94afaa0ec8d0c60272ffc','model.sig',2007,'1abaf52f6ccee9a69d3802088dc17ca1138c915175be37401b124921083ff3e2',NULL,'json',1);
INSERT INTO "scan_files" VALUES(11,'d1f95fed0cd94afaa0ec8d0c60272ffc','sub/notes.txt',6,'444e0fffbd825e9610ff5b199485707a0c895339ae80c15cc8a8aee41b106fda',NULL,'text',1);
INSERT INTO "scan_files" VALUES(12,'d1f95fed0cd94afaa0ec8d0c60272ffc','weights.bin',10240,'e96760a87768717bcebcfd25ddc7d46b4dbc95a4b0014def080c08539f7d90d0',NULL,'unknown',1);
INSERT INTO "scan_files" VALUES(13,'40bfaa04ac9a459c936c325c17b88126','README.md',35,'6aaf90937004cc009af24924b6950b160ad83eda00aca9682b4041a964bc36bd','816faa1588aacc7761a5994c0c96104df0030585','text',1);
INSERT INTO "scan_files" VALUES(14,'40bfaa04ac9a459c936c325c17b88126','config.json',40,'4894ee9b65a9ed4030daf5a213896bfa215175a3477cee38d5d4ebcef8df94d8','5628f006f3288e3acef05466e7d1d001d93348f3','json',1);
INSERT INTO "scan_files" VALUES(15,'40bfaa04ac9a459c936c325c17b88126','model.safetensors',136,'a23369b7542531dda2bccafaed372a5ddf505b0e343915432190f5e58c964526',NULL,'safetensors',1);
INSERT INTO "scan_files" VALUES(16,'40bfaa04ac9a459c936c325c17b88126','sub/tokenizer.json',18,'4e3043229142b64d998563bc543ce034e0a2251af5d404995e3afcb8ce8850df','fdef94443aef6c464d438c4654540cb4245f8f1e','json',1);
CREATE TABLE scans (
	id VARCHAR(32) NOT NULL, 
	target TEXT NOT NULL, 
	source_type VARCHAR(64) NOT NULL, 
	source JSON NOT NULL, 
	started_at DATETIME NOT NULL, 
	finished_at DATETIME NOT NULL, 
	tool_version VARCHAR(64) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	error TEXT, 
	CONSTRAINT pk_scans PRIMARY KEY (id)
);
INSERT INTO "scans" VALUES('7aa3c15d057440b7b4e2f15b0b7696d7','/tmp/tmp1j4hpxy1/local','local','{"type": "local", "root": "/tmp/tmp1j4hpxy1/local"}','2026-12-04 13:52:50.381985','2026-12-04 13:52:50.402989','0.1.0','complete',NULL);
INSERT INTO "scans" VALUES('e7a0f2afa5f6422da4637d79b2d4e065','/tmp/tmp1j4hpxy1/waived','local','{"type": "local", "root": "/tmp/tmp1j4hpxy1/waived"}','2026-12-04 13:52:50.697542','2026-12-04 13:52:50.706635','0.1.0','complete',NULL);
INSERT INTO "scans" VALUES('99fd6006102847afae83474a4f9cfdf3','/tmp/tmp1j4hpxy1/denied','local','{"type": "local", "root": "/tmp/tmp1j4hpxy1/denied"}','2026-12-04 13:52:50.923924','2026-12-04 13:52:50.934217','0.1.0','complete',NULL);
INSERT INTO "scans" VALUES('d1f95fed0cd94afaa0ec8d0c60272ffc','/tmp/tmp1j4hpxy1/signed','local','{"type": "local", "root": "/tmp/tmp1j4hpxy1/signed"}','2026-12-04 13:52:51.100386','2026-12-04 13:52:51.112303','0.1.0','complete',NULL);
INSERT INTO "scans" VALUES('40bfaa04ac9a459c936c325c17b88126','hf://Qwen/tiny','huggingface','{"type": "huggingface", "repo_id": "Qwen/tiny", "revision_requested": "main", "commit": "1fbab6a8a84be6b378369b7ae020ae1631804519", "endpoint": "http://127.0.0.1:34713"}','2026-12-04 13:52:52.094300','2026-12-04 13:52:52.294688','0.1.0','complete',NULL);
INSERT INTO "scans" VALUES('ffffffffffffffffffffffffffffffff','/tmp/tmp1j4hpxy1/local','unknown','{}','2026-12-01 10:00:00.000000','2026-12-01 10:00:01.000000','0.1.0','failed','OSError: disk went away');
CREATE TABLE signatures (
	id INTEGER NOT NULL, 
	scan_id VARCHAR(32) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	method VARCHAR(16), 
	signer TEXT, 
	issuer TEXT, 
	key_fingerprint VARCHAR(128), 
	certificate_subject TEXT, 
	key_usage JSON NOT NULL, 
	path TEXT, 
	predicate_type TEXT, 
	digest_algorithm VARCHAR(64), 
	reason TEXT NOT NULL, 
	diff JSON NOT NULL, 
	outside JSON NOT NULL, bundle_sha256 VARCHAR(64), 
	CONSTRAINT pk_signatures PRIMARY KEY (id), 
	CONSTRAINT fk_signatures_scan_id_scans FOREIGN KEY(scan_id) REFERENCES scans (id)
);
INSERT INTO "signatures" VALUES(1,'7aa3c15d057440b7b4e2f15b0b7696d7','absent',NULL,NULL,NULL,NULL,NULL,'[]',NULL,NULL,NULL,'the model carries no signature','{"extra": [], "missing": [], "changed": []}','[]',NULL);
INSERT INTO "signatures" VALUES(2,'e7a0f2afa5f6422da4637d79b2d4e065','absent',NULL,NULL,NULL,NULL,NULL,'[]',NULL,NULL,NULL,'the model carries no signature','{"extra": [], "missing": [], "changed": []}','[]',NULL);
INSERT INTO "signatures" VALUES(3,'99fd6006102847afae83474a4f9cfdf3','absent',NULL,NULL,NULL,NULL,NULL,'[]',NULL,NULL,NULL,'the model carries no signature','{"extra": [], "missing": [], "changed": []}','[]',NULL);
INSERT INTO "signatures" VALUES(4,'d1f95fed0cd94afaa0ec8d0c60272ffc','verified','key','sha256:5f771d5d3b85c9c337e1141364d6592c06579df38e7525335fb893fce5b302a0',NULL,'sha256:5f771d5d3b85c9c337e1141364d6592c06579df38e7525335fb893fce5b302a0',NULL,'[]','model.sig','https://model_signing/signature/v1.0','sha256','signature verified; all 4 signed files match','{"extra": [], "missing": [], "changed": []}','["model.sig"]','1abaf52f6ccee9a69d3802088dc17ca1138c915175be37401b124921083ff3e2');
INSERT INTO "signatures" VALUES(5,'40bfaa04ac9a459c936c325c17b88126','absent',NULL,NULL,NULL,NULL,NULL,'[]',NULL,NULL,NULL,'the model carries no signature','{"extra": [], "missing": [], "changed": []}','[]',NULL);
CREATE TABLE source_revisions (
	id INTEGER NOT NULL, 
	scan_id VARCHAR(32) NOT NULL, 
	source_type VARCHAR(32) NOT NULL, 
	repo_id TEXT NOT NULL, 
	namespace TEXT NOT NULL, 
	"commit" VARCHAR(64) NOT NULL, 
	revision_requested TEXT NOT NULL, 
	endpoint TEXT NOT NULL, 
	created_at VARCHAR(64), 
	last_modified VARCHAR(64), 
	gated VARCHAR(32), 
	private BOOLEAN, 
	license TEXT, 
	license_name TEXT, 
	license_link TEXT, 
	library_name TEXT, 
	pipeline_tag TEXT, 
	base_model_relation TEXT, 
	hub_security_status TEXT, 
	metadata_lists JSON NOT NULL, 
	CONSTRAINT pk_source_revisions PRIMARY KEY (id), 
	CONSTRAINT fk_source_revisions_scan_id_scans FOREIGN KEY(scan_id) REFERENCES scans (id), 
	CONSTRAINT uq_source_revisions_scan_id UNIQUE (scan_id)
);
INSERT INTO "source_revisions" VALUES(1,'40bfaa04ac9a459c936c325c17b88126','huggingface','Qwen/tiny','Qwen','1fbab6a8a84be6b378369b7ae020ae1631804519','main','http://127.0.0.1:34713','2024-01-02T03:04:05+00:00','2024-06-07T08:09:10+00:00','false',0,'apache-2.0',NULL,NULL,'transformers','text-generation','finetune','{"filesWithIssues": [], "scansDone": true}','{"tags": [], "datasets": ["acme/corpus"], "languages": ["en", "fr"], "base_models": ["Qwen/base"], "lineage_roots": ["Qwen/base"], "lineage_truncated": false, "lineage_cycle": false}');
CREATE INDEX ix_scans_started_at ON scans (started_at);
CREATE INDEX ix_scan_files_sha256 ON scan_files (sha256);
CREATE INDEX ix_findings_scan_id ON findings (scan_id);
CREATE INDEX ix_findings_code ON findings (code);
CREATE INDEX ix_decisions_scan_id ON decisions (scan_id);
CREATE INDEX ix_scan_facts_subject ON scan_facts (subject);
CREATE INDEX ix_source_revisions_repo_id_commit ON source_revisions (repo_id, "commit");
CREATE INDEX ix_declared_files_sha256 ON declared_files (sha256);
CREATE INDEX ix_lineage_edges_scan_id ON lineage_edges (scan_id);
CREATE INDEX ix_lineage_edges_parent ON lineage_edges (parent);
CREATE INDEX ix_signatures_scan_id ON signatures (scan_id);
CREATE INDEX ix_signatures_signer ON signatures (signer);
CREATE INDEX ix_approvals_scan_id ON approvals (scan_id);
COMMIT;
