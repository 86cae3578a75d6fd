import datetime as dt

import dagster as dg

# Settlement days are Europe/London calendar days; the replay serves real FUELHH, INDO and ITSDO from 2016-01-01.
bmrs_daily_partitions = dg.DailyPartitionsDefinition(start_date="2016-01-01", timezone="Europe/London")


def partition_day(context: dg.AssetExecutionContext) -> dt.date:
    return dt.date.fromisoformat(context.partition_key)
