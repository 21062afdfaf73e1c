"""Small builders of IMM-shaped records for the loader and writer tests (no I/O)."""

from __future__ import annotations

from typing import Any

CLUSTER_A = "Cluster-7bdbcedb-bd79-42e7-a1e2-b29a48532bd6"


def face(i: int, cluster: str | None = CLUSTER_A, **fields: Any) -> dict:
    """One ``File.Figures[]`` entry with the fields IMM returns."""
    rec = {
        "FigureId": f"fig-{i}",
        "FigureConfidence": 0.99,
        "FigureClusterId": cluster,
        "FigureClusterConfidence": 0.8,
        "FigureType": "face",
        "Age": 20 + i % 50,
        "AgeSD": 5,
        "Gender": "female" if i % 2 else "male",
        "GenderConfidence": 0.97,
        "Emotion": "happiness",
        "EmotionConfidence": 0.7,
        "FaceQuality": 0.5 + (i % 5) / 10,
        "Boundary": {"Width": 80 + i, "Height": 100 + i, "Left": 10 * i, "Top": 30},
        "Mouth": "close",
        "MouthConfidence": 1.0,
        "Beard": "none",
        "BeardConfidence": 1.0,
        "Hat": "none",
        "HatConfidence": 1.0,
        "Mask": "none",
        "MaskConfidence": 0.68,
        "Glasses": "none",
        "GlassesConfidence": 0.99,
        "Sharpness": 0.7,
        "Attractive": 0.96,
        "HeadPose": {"Pitch": -0.9 + i, "Roll": 1.166, "Yaw": 7.932},
    }
    if cluster is None:
        del rec["FigureClusterId"]
    rec.update(fields)
    return rec


def file(j: int, faces: list[dict], **fields: Any) -> dict:
    """One File record (SimpleQuery ``Files[]``) holding ``faces``."""
    rec = {
        "ObjectId": f"file-{j:04d}",
        "ObjectType": "file",
        "URI": f"oss://bucket/store-{j % 3 + 1}/cam-1/{j}.jpg",
        "Filename": f"{j}.jpg",
        "MediaType": "image",
        "ContentType": "image/jpeg",
        "Size": 187674 + j,
        "ImageWidth": 683,
        "ImageHeight": 1024,
        "ProduceTime": f"2022-07-12T15:56:{j % 60:02d}.123456789+08:00",
        "FileModifiedTime": "2022-07-12T15:56:41+08:00",
        "CreateTime": "2022-07-12T15:57:47.792615815+08:00",
        "FigureCount": len(faces),
        "Figures": faces,
    }
    rec.update(fields)
    return rec


def simple_query(files: list[dict], **fields: Any) -> dict:
    """A SimpleQuery response page."""
    return {"Aggregations": [], "Files": files, "NextToken": "", "RequestId": "84E4D242-****", **fields}


def cluster(k: int, cover: dict | None = None, **fields: Any) -> dict:
    """One FigureCluster record."""
    rec = {
        "ObjectId": f"Cluster-{k:04d}",
        "ObjectType": "figure-cluster",
        "Name": f"person {k}",
        "Gender": "female",
        "FaceCount": 16 + k,
        "ImageCount": 16 + k,
        "VideoCount": 0,
        "AverageAge": 27.125,
        "MinAge": 23.0,
        "MaxAge": 30.0,
        "CreateTime": "2022-07-12T16:41:19.336825716+08:00",
        "UpdateTime": "2022-09-19T17:08:59.374781532+08:00",
        "ProjectName": "test-project",
        "DatasetName": "test-dataset",
    }
    if cover is not None:
        rec["Cover"] = cover
    rec.update(fields)
    return rec


def query_figure_clusters(clusters: list[dict], **fields: Any) -> dict:
    """A QueryFigureClusters response page."""
    return {"FigureClusters": clusters, "NextToken": "", "RequestId": "42B3DD92-****", **fields}


def pages(n_pages: int = 3, files_per_page: int = 4, start: int = 0) -> list[dict]:
    """SimpleQuery pages with 1-3 faces per file, a mix of clustered, independent and unavailable faces."""
    out, i = [], start * 10
    states = [CLUSTER_A, "figure-cluster-id-independent", "figure-cluster-id-unavailable", "Cluster-0002"]
    for p in range(n_pages):
        files = []
        for f in range(files_per_page):
            j = start + p * files_per_page + f
            faces = []
            for _ in range(1 + j % 3):
                faces.append(face(i, states[i % len(states)]))
                i += 1
            files.append(file(j, faces))
        out.append(simple_query(files))
    return out
