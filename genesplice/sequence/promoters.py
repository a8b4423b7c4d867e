"""Promoter FASTAs whose headers carry gene ids (EPDnew core promoters, −49..+10).

Header layout of the bundled ``coords/epdnew_hs_core_promoters_m49_p10.fa.gz``::

    >NOC2L_1 gene=NOC2L ensembl=ENSG00000188976 len=60

``ensembl=`` may list several ids separated by commas, or ``NA``. Other ``key=value`` pairs
are ignored; a record without ``gene=`` takes its record id as the gene symbol.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd

from genesplice.io.constants import PROMOTER_TSS_INDEX
from genesplice.io.errors import GeneSpliceInputError
from genesplice.sequence.fasta import read_fasta_records

_KEY_VALUE = re.compile(r"(\w+)=(\S+)")

PROMOTER_COLUMNS = ["promoter_id", "gene_symbol", "ensembl_id", "sequence", "tss_index"]


def read_promoter_fasta(path: str | os.PathLike, tss_index: int = PROMOTER_TSS_INDEX) -> pd.DataFrame:
    """One row per record: ``promoter_id, gene_symbol, ensembl_id, sequence, tss_index``.

    ``ensembl_id`` keeps the header's comma-separated list (``NA`` → missing); ``sequence`` is
    uppercased (EPDnew writes the upstream part in lowercase); ``tss_index`` is the TSS position
    inside the sequence (49 for EPDnew −49..+10).
    """
    path = Path(path)
    rows = []
    for record in read_fasta_records(path):  # checked: headers, letters, line numbers
        fields = dict(_KEY_VALUE.findall(record.description))
        ens = fields.get("ensembl")
        rows.append((record.name, fields.get("gene", record.name),
                     None if ens in (None, "NA") else ens, record.sequence.upper(), tss_index))
    if not rows:
        raise GeneSpliceInputError("no FASTA records (expected lines starting with '>')", path=path)
    return pd.DataFrame(rows, columns=PROMOTER_COLUMNS)


def first_promoter_per_gene(promoters: pd.DataFrame) -> pd.DataFrame:
    """Keep one promoter per gene symbol: the first listed (EPDnew's ``_1`` is the main one)."""
    return promoters.drop_duplicates("gene_symbol", keep="first").reset_index(drop=True)
