"""Admin lists as CSV files: the selected rows, with cells a spreadsheet would run as formulas defused."""

import csv

from django.http import HttpResponse

# Spreadsheet programs run cells starting with these as formulas (CSV injection).
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_PREFIXES) else text


def csv_export_action(columns: dict[str, str], *, filename: str):
    """Build an admin action that downloads the selected rows as CSV.

    `columns` maps each CSV header to an attribute path (`a__b` follows relations).
    """

    def export(modeladmin, request, queryset):
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        writer = csv.writer(response)
        writer.writerow(columns)
        for obj in queryset.iterator(chunk_size=2000):
            row = []
            for name in columns.values():
                value = obj
                for part in name.split("__"):
                    value = getattr(value, part, None)
                row.append(_csv_cell(value))
            writer.writerow(row)
        return response

    export.short_description = "Export selected as CSV"
    export.__name__ = f"export_{filename.split('.')[0]}_csv"
    return export
